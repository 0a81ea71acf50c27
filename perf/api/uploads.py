"""``POST /uploads``' background work: the request only enqueues it and answers 202.

:func:`process_upload` stands in for real processing (thumbnails, virus scan...): it
waits ``delay`` seconds (I/O), "scans" the payload and hashes it off the event loop. An
upload carrying the EICAR antivirus test signature is rejected (:class:`UploadRejected`):
a task that fails on every attempt, so it ends ``dead`` with its error.

It is idempotent (same payload, same result, no side effect), as a handler of the
at-least-once :class:`~perf.queue.durable.DurableQueue` must be.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


#: What ``POST /uploads`` takes (415 otherwise): raw bytes or an image. The handler checks
#: this tuple and ``/openapi.json`` publishes it, so the two cannot drift.
UPLOAD_TYPES = ("application/octet-stream", "image/png", "image/jpeg", "image/webp", "image/gif")


class UploadRejected(Exception):
    """The upload cannot be processed (here: it carries the EICAR test signature)."""


async def process_upload(payload: bytes, *, delay: float = 0.01) -> dict[str, Any]:
    """Simulate processing an upload; returns its size and SHA-256 (:class:`UploadRejected` for EICAR)."""
    await asyncio.sleep(delay)
    if EICAR in payload:
        raise UploadRejected("virus scan: EICAR test signature found; the upload is rejected")
    digest = await asyncio.to_thread(lambda: hashlib.sha256(payload).hexdigest()) if len(payload) > 65536 \
        else hashlib.sha256(payload).hexdigest()
    return {"bytes": len(payload), "sha256": digest}


def upload_handlers(delay: float) -> dict[str, Callable[[bytes], Awaitable[Any]]]:
    """The durable queue's handlers for the API: ``{"upload": process_upload(payload, delay=delay)}``."""
    async def upload(payload: bytes) -> dict[str, Any]:
        return await process_upload(payload, delay=delay)

    return {"upload": upload}

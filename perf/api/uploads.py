"""``POST /uploads``' background work: the request only enqueues it and answers 202.

:func:`process_upload` stands in for real processing (thumbnails, virus scan...): it
waits ``delay`` seconds (I/O) and hashes the payload off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any


async def process_upload(payload: bytes, *, delay: float = 0.01) -> dict[str, Any]:
    """Simulate processing an upload; returns its size and SHA-256."""
    await asyncio.sleep(delay)
    digest = await asyncio.to_thread(lambda: hashlib.sha256(payload).hexdigest()) if len(payload) > 65536 \
        else hashlib.sha256(payload).hexdigest()
    return {"bytes": len(payload), "sha256": digest}

"""The plumbing a notebook's closing cell does: drop its Redis keys, give back its cores, detach.

Notebooks 05 and 07 pin their kernel (the load generator) off the server's cores in their
set-up cell and write Redis keys under their schema's name; :func:`cleanup` undoes both and
lets go of the services, in one call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import redis.asyncio as redis

from perf.services import ServiceHandle

_GLOB = set("*?[]\\")


async def cleanup(services: ServiceHandle, *, key_prefix: str, affinity: Iterable[int] | None = None,
                  batch: int = 500) -> int:
    """Delete every Redis key starting with ``key_prefix``, pin this process back to ``affinity`` (the
    cores it had before the notebook pinned it; None leaves them) and close ``services``. Returns how
    many keys it deleted.

    Keys are found with ``SCAN`` (``batch`` at a time), never ``KEYS``, and deleted page by page.

    >>> await cleanup(services, key_prefix=f"{SCHEMA}:", affinity=original_affinity)  # doctest: +SKIP
    """
    if not key_prefix or _GLOB & set(key_prefix):
        raise ValueError(f"key_prefix={key_prefix!r} must be a non-empty literal prefix without glob characters "
                         "(* ? [ ] \\), e.g. f'{SCHEMA}:'")
    if batch < 1:
        raise ValueError(f"batch={batch!r} must be >= 1 (e.g. 500)")
    cores = set(affinity) if affinity is not None else None
    if cores is not None and not cores:
        raise ValueError("affinity is empty: pass what perf.services.current_affinity() gave before pinning, or None")
    deleted = 0
    client = redis.from_url(services.redis_url)
    try:
        page: list[bytes] = []
        async for key in client.scan_iter(match=f"{key_prefix}*", count=batch):
            page.append(key)
            if len(page) >= batch:
                deleted += int(await client.delete(*page))
                page.clear()
        if page:
            deleted += int(await client.delete(*page))
    finally:
        await client.aclose()
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    services.close()
    return deleted

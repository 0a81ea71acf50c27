"""Measuring apparatus: what ``KEYS *`` does to everyone else, next to a ``SCAN`` loop.

Redis runs one command at a time. ``KEYS pattern`` (the seed's ``clear``) walks the whole
keyspace in one command, so every other client waits until it is done; ``SCAN`` walks it
a batch per command, and other clients' commands run between batches. :func:`keys_vs_scan`
creates ``keys`` keys under a prefix of its own, runs each walk (``KEYS prefix*``, a
``SCAN MATCH prefix*`` loop: both visit every key of the database, the pattern only filters
what they return) in a **separate process** (so parsing a million names cannot block this
one), and meanwhile sends ``GET`` after ``GET`` from here, recording each one's latency.
Afterwards it unlinks its own keys and nothing else: it never flushes a database.

>>> result = await keys_vs_scan(redis_url, keys=200_000)
>>> result.worst_get("KEYS") / result.worst_get("SCAN")   # median over rounds
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as redis
from redis.exceptions import ResponseError

_WALK = """
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
pattern = sys.argv[4] + "*"
if sys.argv[2] == "KEYS":
    found = len(client.keys(pattern))
else:
    found = sum(1 for _ in client.scan_iter(match=pattern, count=int(sys.argv[3])))
print(found)
"""


@dataclass
class KeysVsScan:
    """Latencies (seconds) of a concurrent ``GET`` while each walk ran, and the walks' own durations."""

    keys: int
    prefix: str = ""  # every key the demo wrote was under it, and is gone afterwards
    get_latencies: dict[str, list[float]] = field(default_factory=dict)  # the first round's, for charts
    worst_gets: dict[str, list[float]] = field(default_factory=dict)  # the slowest GET of each round
    walk_seconds: dict[str, float] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)

    def worst_get(self, walk: str) -> float:
        """The slowest ``GET`` while ``walk`` (``"KEYS"`` or ``"SCAN"``) ran: the median over rounds, so
        one hiccup of a busy machine (this process descheduled) does not decide it."""
        worsts = sorted(self.worst_gets[walk])
        return worsts[len(worsts) // 2]


async def populate(client: redis.Redis, keys: int, *, prefix: str = "demo:key", batch: int = 10_000) -> None:
    """Create ``keys`` small keys (``DEBUG POPULATE`` when the server allows it, else pipelined SETs)."""
    try:
        await client.execute_command("DEBUG", "POPULATE", keys, prefix)  # type: ignore[no-untyped-call]
        return
    except ResponseError:
        pass
    for start in range(0, keys, batch):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, keys)):
                pipe.set(f"{prefix}:{i}", b"x")
            await pipe.execute()


async def _walk_while_probing(client: redis.Redis, url: str, walk: str, scan_count: int,
                              prefix: str) -> tuple[list[float], float, int]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _WALK, url, walk, str(scan_count), prefix,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    latencies: list[float] = []
    started = time.perf_counter()
    waiter = asyncio.create_task(proc.communicate())
    while not waiter.done():
        sent = time.perf_counter()
        await client.get(prefix + "probe")
        latencies.append(time.perf_counter() - sent)
        await asyncio.sleep(0.0005)
    out, err = await waiter
    if proc.returncode != 0:
        raise RuntimeError(f"the {walk} walk failed (exit {proc.returncode}): {err.decode()[-2000:]}")
    return latencies, time.perf_counter() - started, int(out)


async def unlink_prefix(client: redis.Redis, prefix: str, *, batch: int = 10_000) -> int:
    """Unlink every key under ``prefix`` (SCAN, a batch at a time), return how many; nothing else is touched."""
    removed = 0
    async for keys in _batches(client.scan_iter(match=prefix + "*", count=batch), batch):
        removed += int(await client.unlink(*keys))
    return removed


async def _batches(names: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for name in names:
        batch.append(name)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def keys_vs_scan(redis_url: str, *, keys: int = 200_000, db: int | None = None, scan_count: int = 1000,
                       rounds: int = 3) -> KeysVsScan:
    """Create ``keys`` keys under a prefix unique to this call in database ``db`` of ``redis_url``
    (default: the URL's own), then measure ``GET`` latency from this process while another process
    runs ``KEYS prefix*``, and while it runs a ``SCAN MATCH prefix*`` loop (``scan_count`` per
    batch), alternating ``rounds`` times. Both walks visit every key in the database, the demo's and
    any others. Only the demo's own keys are deleted afterwards, never anything else. ``KEYS`` blocks
    the whole server while it runs (that is the lesson): run it against the embedded Redis, not a
    server others use."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be >= 1 (e.g. 3)")
    if keys < 1:
        raise ValueError(f"keys={keys!r} must be >= 1 (e.g. 200_000; the full profile uses >= 1_000_000)")
    if db is not None and not 0 <= db <= 15:
        raise ValueError(f"db={db!r} must be a Redis database index 0-15, or None for the URL's own")
    url = redis_url
    if db is not None:
        url = redis_url.rsplit("/", 1)[0] + f"/{db}" if redis_url.count("/") >= 3 else f"{redis_url}/{db}"
    prefix = f"demo:{uuid.uuid4().hex[:12]}:"
    client = redis.from_url(url)
    result = KeysVsScan(keys=keys, prefix=prefix)
    try:
        await populate(client, keys, prefix=prefix + "key")
        await client.set(prefix + "probe", b"v")
        for _ in range(rounds):
            for walk in ("KEYS", "SCAN"):
                latencies, seconds, found = await _walk_while_probing(client, url, walk, scan_count, prefix)
                result.get_latencies.setdefault(walk, latencies)
                result.worst_gets.setdefault(walk, []).append(max(latencies))
                result.walk_seconds.setdefault(walk, seconds)
                result.found[walk] = found
    finally:
        try:
            await unlink_prefix(client, prefix)
        finally:
            await client.aclose()
    return result

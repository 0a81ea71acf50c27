"""Load over time: run a unit of work from many workers, bucket successes and errors by time.

For the pool's recovery and sizing experiments (a PostgreSQL restart mid-run, too many
connections for ``max_connections``, idle connections closing down).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from perf.pool.pool import Pool


@dataclass(frozen=True)
class Timeline:
    """``frame``: one row per time bucket (``t`` = bucket start, s) with ``ok`` and ``errors`` counts;
    ``errors``: how many of each exception class (``"PoolConnectError: ..."`` style keys by class)."""

    frame: pd.DataFrame
    errors: Counter[str]
    bucket: float

    def recovered_after(self, since: float) -> float | None:
        """Seconds from ``since`` to the start of the first error-free bucket after the last error."""
        failing = self.frame[self.frame["errors"] > 0]
        if failing.empty:
            return None
        last_error = float(failing["t"].max())
        after = self.frame[(self.frame["t"] > last_error) & (self.frame["ok"] > 0)]
        return None if after.empty else float(after["t"].min()) - since


async def run_timeline(work: Callable[[], Awaitable[Any]], *, concurrency: int, seconds: float,
                       bucket: float = 0.1, pause_after_error: float = 0.02) -> Timeline:
    """Call ``work()`` from ``concurrency`` workers for ``seconds``; count results per ``bucket`` s.

    Errors (any ``Exception``) are counted, not raised; a worker pauses
    ``pause_after_error`` s after one so a dead server is not hammered in a tight loop.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    if seconds <= 0 or bucket <= 0:
        raise ValueError(f"seconds and bucket must be > 0, got seconds={seconds!r}, bucket={bucket!r}")
    loop = asyncio.get_running_loop()
    n_buckets = max(round(seconds / bucket), 1)  # work finishing after the deadline lands in the last one
    ok, err = [0] * n_buckets, [0] * n_buckets
    errors: Counter[str] = Counter()
    start = loop.time()
    deadline = start + seconds

    async def worker() -> None:
        while loop.time() < deadline:
            try:
                await work()
            except Exception as exc:  # counted: the experiment is about failures
                err[min(int((loop.time() - start) / bucket), n_buckets - 1)] += 1
                errors[type(exc).__name__] += 1
                await asyncio.sleep(pause_after_error)
            else:
                ok[min(int((loop.time() - start) / bucket), n_buckets - 1)] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    frame = pd.DataFrame({"t": [i * bucket for i in range(n_buckets)], "ok": ok, "errors": err})
    return Timeline(frame, errors, bucket)


async def sample_stats(pool: Pool[Any], *, seconds: float, every: float = 0.1) -> pd.DataFrame:
    """Poll ``pool.stats()`` every ``every`` s for ``seconds``: columns t, size, idle, in_use, waiting."""
    if seconds <= 0 or every <= 0:
        raise ValueError(f"seconds and every must be > 0, got seconds={seconds!r}, every={every!r}")
    loop = asyncio.get_running_loop()
    start = loop.time()
    rows = []
    while True:
        now = loop.time() - start
        s = pool.stats()
        rows.append((now, s.size, s.idle, s.in_use, s.waiting))
        if now >= seconds:
            break
        await asyncio.sleep(every)
    return pd.DataFrame(rows, columns=["t", "size", "idle", "in_use", "waiting"])

"""Race connection strategies on the same query: connect per request, the seed's pool,
:mod:`perf.pool` in each reset mode, and asyncpg's pool (default reset, and a no-op reset).

Used by ``notebooks/03_pool.ipynb`` and ``python -m perf.bench.pool``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pandas as pd

from perf.measure.judgements import rank
from perf.measure.latency import LatencyHistogram
from perf.measure.verdict import Verdict
from perf.measure.verdict import compare as judge
from perf.pool import ResetMode, create_pool
from perf.pool.naive import SeedPoolTypoFixed

CONNECT = "connect per request"
SEED = "seed pool (typo fixed)"
OURS_NONE = "perf.pool, reset=none"
OURS = "perf.pool, reset=session"
OURS_ALWAYS = "perf.pool, reset=always"  # the default
ASYNCPG = "asyncpg pool, default reset"
ASYNCPG_NO_RESET = "asyncpg pool, no-op reset"
STRATEGIES: tuple[str, ...] = (CONNECT, SEED, OURS_NONE, OURS, OURS_ALWAYS, ASYNCPG, ASYNCPG_NO_RESET)
OUR_MODES: dict[str, ResetMode] = {OURS_NONE: "none", OURS: "session", OURS_ALWAYS: "always"}
WHAT_IS_RESET: dict[str, str] = {
    CONNECT: "nothing to reset: every query gets a new session",
    SEED: "nothing: a connection goes back as it is, even inside a transaction",
    OURS_NONE: "rolls back an open transaction; session state (SET, advisory locks, LISTEN) leaks",
    OURS: "rolls back; the full session reset below only after SQL whose text changes the session",
    OURS_ALWAYS: "rolls back; asyncpg's reset plus RESET ROLE, DISCARD TEMP/SEQUENCES, SQL PREPAREs, every release",
    ASYNCPG: "rolls back; RESET ALL, advisory unlock, UNLISTEN, CLOSE ALL on every release",
    ASYNCPG_NO_RESET: "rolls back an open transaction; session state leaks",
}
QUERY = "SELECT $1::int"


@dataclass(frozen=True)
class Contender:
    """One strategy: how it gets a connection and how it gives it back."""

    name: str
    acquire: Callable[[], Awaitable[Any]]
    release: Callable[[Any], Awaitable[None]]


async def _no_reset(conn: asyncpg.Connection) -> None:
    """A reset that does nothing: asyncpg then only rolls back an open transaction."""


class Contenders:
    """Open every strategy in ``names`` against ``dsn``, each with ``max_size`` connections.

    ``async with Contenders(dsn, max_size=10) as race: race[OURS]``; closing closes
    every pool (and every connection the seed's pool opened).
    """

    def __init__(self, dsn: str, *, max_size: int = 10, names: Sequence[str] = STRATEGIES,
                 application_name: str = "perf-pool-race") -> None:
        unknown = [n for n in names if n not in STRATEGIES]
        if unknown:
            raise ValueError(f"names has unknown strategies {unknown!r}; pick from {STRATEGIES!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be an int >= 1, got {max_size!r}")
        self.dsn, self.max_size, self.names = dsn, max_size, tuple(names)
        self._settings = {"application_name": application_name}
        self._contenders: dict[str, Contender] = {}
        self._closers: list[Callable[[], Awaitable[Any]]] = []

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, server_settings=self._settings)

    async def open(self) -> Contenders:
        """Open every pool, filled to ``max_size`` so no race pays for warm-up."""
        size = self.max_size
        for name in self.names:
            if name == CONNECT:
                async def close_conn(conn: asyncpg.Connection) -> None:
                    await conn.close()
                self._contenders[name] = Contender(name, self._connect, close_conn)
            elif name == SEED:
                seed = SeedPoolTypoFixed(self._connect, min_size=size, max_size=size)
                self._closers.append(seed.close_everything)
                await seed.initialize()
                self._contenders[name] = Contender(name, seed.acquire, seed.release)
            elif name in OUR_MODES:
                pool = await create_pool(self.dsn, min_size=size, max_size=size, reset=OUR_MODES[name],
                                         server_settings=self._settings)
                self._closers.append(pool.close)
                self._contenders[name] = Contender(name, pool.acquire, pool.release)
            else:
                reset = _no_reset if name == ASYNCPG_NO_RESET else None
                apool = await asyncpg.create_pool(self.dsn, min_size=size, max_size=size, reset=reset,
                                                  server_settings=self._settings)
                self._closers.append(apool.close)
                self._contenders[name] = Contender(name, apool.acquire, apool.release)
        return self

    async def close(self) -> None:
        """Close every pool opened by :meth:`open`."""
        while self._closers:
            await self._closers.pop()()

    async def __aenter__(self) -> Contenders:
        try:
            return await self.open()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __getitem__(self, name: str) -> Contender:
        return self._contenders[name]

    def __iter__(self) -> Iterator[Contender]:
        return iter(self._contenders.values())


@dataclass(frozen=True)
class Burst:
    """One run: ``queries`` done by ``concurrency`` workers in ``seconds``."""

    name: str
    concurrency: int
    queries: int
    seconds: float
    waits: LatencyHistogram
    latencies: LatencyHistogram

    @property
    def qps(self) -> float:
        """Queries per second."""
        return self.queries / self.seconds


async def run_burst(contender: Contender, *, concurrency: int, queries: int, query: str = QUERY) -> Burst:
    """Run ``queries`` queries with ``concurrency`` workers, each borrowing a connection per query.

    Records each acquire's wait (``waits``) and each borrow-query-return's latency.
    """
    if concurrency < 1 or queries < concurrency:
        raise ValueError(f"need 1 <= concurrency <= queries, got concurrency={concurrency!r}, "
                         f"queries={queries!r}")
    loop = asyncio.get_running_loop()
    waits, latencies = LatencyHistogram(), LatencyHistogram()
    remaining = queries

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = loop.time()
            conn = await contender.acquire()
            t1 = loop.time()
            try:
                await conn.fetchval(query, remaining)
            finally:
                await contender.release(conn)
            waits.record(t1 - t0)
            latencies.record(loop.time() - t0)

    started = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Burst(contender.name, concurrency, queries, loop.time() - started, waits, latencies)


@dataclass
class RaceResult:
    """Every burst of a race: ``frame`` has one row per (round, concurrency, strategy)."""

    frame: pd.DataFrame
    waits: dict[tuple[str, int], LatencyHistogram] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Median queries/s with quartiles per strategy and concurrency (rows: strategy, concurrency)."""
        grouped = self.frame.groupby(["strategy", "concurrency"])["qps"]
        out = pd.DataFrame({"median_qps": grouped.median(), "q1_qps": grouped.quantile(0.25),
                            "q3_qps": grouped.quantile(0.75), "rounds": grouped.count()})
        return out.reset_index()

    def ratio(self, variant: str, baseline: str, concurrency: int) -> float:
        """Median over rounds of ``variant``'s queries/s divided by ``baseline``'s (same round)."""
        rows = self.frame[self.frame["concurrency"] == concurrency]
        wide = rows.pivot(index="round", columns="strategy", values="qps")
        for name in (variant, baseline):
            if name not in wide.columns:
                raise KeyError(f"no strategy {name!r} at concurrency={concurrency}; have {sorted(wide.columns)}")
        return float((wide[variant] / wide[baseline]).median())


async def race(contenders: Contenders, *, concurrencies: Sequence[int], rounds: int,
               queries: Mapping[str, int] | int, seed: int = 0) -> RaceResult:
    """Run every strategy at every concurrency, ``rounds`` times, interleaved.

    Each round visits the concurrencies in turn and, at each, every strategy in a fresh
    random order, so drift on a shared machine hits all strategies alike. ``queries`` is
    the queries per burst (a number, or one per strategy name: connect-per-request is
    slow, give it fewer); a burst always runs at least ``concurrency`` queries.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    rng = random.Random(seed)
    names = [c.name for c in contenders]
    rows: list[tuple[int, int, str, int, float, float, float]] = []
    waits: dict[tuple[str, int], LatencyHistogram] = {}
    for rnd in range(rounds):
        for conc in concurrencies:
            for name in rng.sample(names, len(names)):
                n = queries if isinstance(queries, int) else queries[name]
                burst = await run_burst(contenders[name], concurrency=conc, queries=max(n, conc))
                rows.append((rnd, conc, name, burst.queries, burst.seconds, burst.qps, burst.waits.percentile(99)))
                key = (name, conc)
                waits[key] = waits[key].merge(burst.waits) if key in waits else burst.waits
    frame = pd.DataFrame(rows, columns=["round", "concurrency", "strategy", "queries", "seconds", "qps",
                                        "wait_p99_s"])
    return RaceResult(frame, waits)


def compare_strategies(result: RaceResult, variant: str, baseline: str, concurrency: int, *,
                       value: str = "qps") -> Verdict:
    """Judge ``variant`` against ``baseline`` at ``concurrency`` from the race's rounds.

    :func:`perf.measure.compare` on the same-round pairs: a direction only when the
    interval of the ratio excludes 1 (and never from fewer than 3 rounds). ``value`` is
    ``"qps"`` (more is better) or ``"wait_p99_s"`` (each burst's p99 acquire wait; less is better).
    """
    if value not in ("qps", "wait_p99_s"):
        raise ValueError(f"value must be 'qps' or 'wait_p99_s', got {value!r}")
    wide = _wide(result, concurrency, value)
    for name in (variant, baseline):
        if name not in wide.columns:
            raise KeyError(f"no strategy {name!r} at concurrency={concurrency}; have {sorted(wide.columns)}")
    if value == "qps":
        return judge(wide[variant].tolist(), wide[baseline].tolist(), a=f"`{variant}`", b=f"`{baseline}`",
                     larger_is_better=True, paired=True)
    return judge(wide[variant].tolist(), wide[baseline].tolist(), a=f"`{variant}`'s p99 acquire wait",
                 b=f"`{baseline}`'s", words=("shorter", "longer"), paired=True)


def rank_strategies(result: RaceResult, concurrency: int, *, strategies: Sequence[str] | None = None) -> Verdict:
    """Rank the strategies by queries/s at ``concurrency``, tying those the rounds cannot separate."""
    wide = _wide(result, concurrency)
    names = list(strategies) if strategies is not None else list(wide.columns)
    return rank({f"`{name}`": wide[name].tolist() for name in names}, larger_is_better=True, paired=True)


def _wide(result: RaceResult, concurrency: int, value: str = "qps") -> pd.DataFrame:
    rows = result.frame[result.frame["concurrency"] == concurrency]
    if rows.empty:
        raise KeyError(f"no bursts at concurrency={concurrency}; have {sorted(result.frame['concurrency'].unique())}")
    return rows.pivot(index="round", columns="strategy", values=value)

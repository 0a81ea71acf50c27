"""Counters and the acquire-wait histogram of a pool, as a snapshot for charts and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from perf.measure.latency import LatencyHistogram


@dataclass
class PoolCounters:
    """Monotonic counters a pool updates as it works (read them through :meth:`Pool.stats`)."""

    acquired: int = 0
    created: int = 0
    closed: int = 0
    lost: int = 0
    expired_idle: int = 0
    expired_lifetime: int = 0
    rolled_back: int = 0
    session_resets: int = 0
    acquire_timeouts: int = 0
    rejected: int = 0
    connect_errors: int = 0
    wait_seconds_total: float = 0.0
    immediate: int = 0  # acquires served at once, folded into ``waits`` as 0 s on snapshot
    waits: LatencyHistogram = field(default_factory=LatencyHistogram)

    def record_wait(self, seconds: float) -> None:
        """Add one successful acquire that waited ``seconds``."""
        self.wait_seconds_total += seconds
        self.waits.record(seconds)


@dataclass(frozen=True)
class PoolStats:
    """A point-in-time view of a pool.

    ``size`` counts open connections plus those being opened; ``idle + in_use <= size``.
    ``waits`` holds every successful acquire's wait (an idle connection handed over at
    once counts as ~1 µs); ``wait_p50``/``wait_p99`` are its percentiles in seconds
    (0.0 before the first acquire). ``wait_seconds_total`` sums them.
    """

    min_size: int
    max_size: int
    size: int
    idle: int
    in_use: int
    waiting: int
    acquired: int
    created: int
    closed: int
    lost: int
    expired_idle: int
    expired_lifetime: int
    rolled_back: int
    session_resets: int
    acquire_timeouts: int
    rejected: int
    connect_errors: int
    wait_seconds_total: float
    wait_count: int
    wait_p50: float
    wait_p99: float
    waits: LatencyHistogram

    def as_dict(self) -> dict[str, float | int]:
        """The numeric fields (no histogram), e.g. for a Prometheus ``/metrics`` page."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "waits"}


def snapshot(counters: PoolCounters, *, min_size: int, max_size: int, size: int, idle: int,
             in_use: int, waiting: int) -> PoolStats:
    """Freeze ``counters`` plus the pool's current gauges into a :class:`PoolStats`."""
    if counters.immediate:
        counters.waits.record(0.0, counters.immediate)
        counters.immediate = 0
    waits = LatencyHistogram().merge(counters.waits)
    has_waits = waits.count > 0
    values = {f.name: getattr(counters, f.name) for f in fields(counters) if f.name not in ("waits", "immediate")}
    return PoolStats(
        min_size=min_size, max_size=max_size, size=size, idle=idle, in_use=in_use,
        waiting=waiting, **values, wait_count=waits.count,
        wait_p50=waits.percentile(50) if has_waits else 0.0,
        wait_p99=waits.percentile(99) if has_waits else 0.0,
        waits=waits,
    )

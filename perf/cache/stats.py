"""Cache statistics: hits and misses per level, errors, load times, latency percentiles.

Counters are plain ints (one event loop, no locks needed). Latencies go to HDR
histograms (:class:`perf.measure.LatencyHistogram`) so percentiles are exact to 0.1%
and mergeable across workers. L1 hits are counted but not timed: an L1 hit costs about
a microsecond, and timing it would double its cost. Recording into an HDR histogram costs
~5 µs in Python, so reads only bump a counter per whole microsecond (~0.1 µs) and the
histograms are filled from those counts when they are read (a snapshot, a /metrics scrape).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas and hdrh load on first use: a cache worker process never pays for them
    import pandas as pd

    from perf.measure.latency import LatencyHistogram

_LABELS = ["p50", "p90", "p99", "p99.9"]  # perf.measure.DEFAULT_PERCENTILES
_MAX_PENDING = 4096  # distinct microsecond values held before folding into the histogram

COUNTERS: tuple[str, ...] = (
    "l1_hits", "l2_hits", "misses", "bypass", "loads", "load_errors", "sets", "deletes",
    "early_refreshes", "coalesced", "lock_waits", "invalidations_sent", "invalidations_received",
    "stores_refused",
)


@dataclass
class CacheStats:
    """Live counters and histograms of one :class:`~perf.cache.multilevel.MultiLevelCache`."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    _l2: LatencyHistogram | None = field(default=None, repr=False)
    _load: LatencyHistogram | None = field(default=None, repr=False)
    _l2_pending: Counter[int] = field(default_factory=Counter, repr=False)
    _load_pending: Counter[int] = field(default_factory=Counter, repr=False)

    def record_l2(self, seconds: float) -> None:
        """Note one L2 read's latency (cheap; folded into :attr:`l2_latency` when it is read)."""
        pending = self._l2_pending
        pending[int(seconds * 1e6)] += 1
        if len(pending) > _MAX_PENDING:
            self._flush(pending, self._histograms()[0])

    def record_load(self, seconds: float) -> None:
        """Note one loader run's duration (folded into :attr:`load_time` when it is read)."""
        self._load_pending[int(seconds * 1e6)] += 1
        if len(self._load_pending) > _MAX_PENDING:
            self._flush(self._load_pending, self._histograms()[1])

    def _histograms(self) -> tuple[LatencyHistogram, LatencyHistogram]:
        if self._l2 is None or self._load is None:
            from perf.measure.latency import LatencyHistogram

            self._l2, self._load = LatencyHistogram(), LatencyHistogram()
        return self._l2, self._load

    @staticmethod
    def _flush(pending: Counter[int], hist: LatencyHistogram | None) -> LatencyHistogram:
        assert hist is not None
        for micros, n in pending.items():
            hist.record(micros / 1e6, n)
        pending.clear()
        return hist

    @property
    def l2_latency(self) -> LatencyHistogram:
        """HDR histogram of L2 read latencies (seconds)."""
        return self._flush(self._l2_pending, self._histograms()[0])

    @property
    def load_time(self) -> LatencyHistogram:
        """HDR histogram of loader durations (seconds)."""
        return self._flush(self._load_pending, self._histograms()[1])

    def incr(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (one of :data:`COUNTERS`)."""
        self.counts[name] += n

    def error(self, kind: str) -> None:
        """Count one error of ``kind`` (``redis``, ``serialization``, ``pubsub``, ...)."""
        self.errors[kind] += 1

    @property
    def reads(self) -> int:
        """Reads answered: L1 hits + L2 hits + misses + bypassed reads."""
        c = self.counts
        return c["l1_hits"] + c["l2_hits"] + c["misses"] + c["bypass"]

    @property
    def hit_ratio(self) -> float:
        """(L1 hits + L2 hits) / reads, 0.0 before the first read."""
        reads = self.reads
        return (self.counts["l1_hits"] + self.counts["l2_hits"]) / reads if reads else 0.0

    def snapshot(self) -> dict[str, Any]:
        """A flat dict: every counter, ``errors_<kind>``, ``errors``, ``hit_ratio`` and
        ``l2_latency_p50`` ... ``load_time_p99.9`` in seconds (``None`` when nothing was recorded)."""
        out: dict[str, Any] = {name: self.counts[name] for name in COUNTERS}
        out["reads"] = self.reads
        out["hit_ratio"] = self.hit_ratio
        out["errors"] = sum(self.errors.values())
        for kind, n in sorted(self.errors.items()):
            out[f"errors_{kind}"] = n
        for name, hist in (("l2_latency", self.l2_latency), ("load_time", self.load_time)):
            out[f"{name}_count"] = hist.count
            values = hist.percentiles() if hist.count else dict.fromkeys(_LABELS)
            for label, value in values.items():
                out[f"{name}_{label}"] = value
        return out

    def to_frame(self, *, readable: bool = False) -> pd.DataFrame:
        """The snapshot as a two-column DataFrame (``metric``, ``value``).

        ``readable=True`` gives each value as text at the precision it has: counts as integers, the hit
        ratio as a percentage, latencies in ms to 3 significant figures (the histograms keep 3), ``-``
        where nothing was recorded."""
        import pandas as pd

        snap = self.snapshot()
        values = [_readable(name, value) for name, value in snap.items()] if readable else list(snap.values())
        return pd.DataFrame({"metric": list(snap), "value": values})

    def reset(self) -> None:
        """Zero every counter and histogram."""
        self.counts.clear()
        self.errors.clear()
        self._l2_pending.clear()
        self._load_pending.clear()
        self._l2 = self._load = None


def _readable(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "hit_ratio":
        return f"{value:.1%}"
    if isinstance(value, float) and name.startswith(("l2_latency_", "load_time_")):
        return f"{value * 1e3:.3g} ms"
    return f"{value:,}"


def hit_ratio_timeline(sources: list[str], *, window: int = 100, label: str = "cache") -> pd.DataFrame:
    """Hit ratio over consecutive windows of ``window`` reads, from a list of read sources
    (``"l1"``/``"l2"`` count as hits): columns ``request`` (end of window), ``hit_ratio``, ``cache``."""
    import pandas as pd

    if window < 1:
        raise ValueError(f"window={window!r} must be >= 1 (e.g. 100 reads)")
    hits = pd.Series([s in ("l1", "l2") for s in sources], dtype=float)
    per_window = hits.groupby(hits.index // window).mean()
    return pd.DataFrame({"request": (per_window.index + 1) * window, "hit_ratio": per_window.to_numpy(),
                         "cache": label})

"""Latency distributions in an HDR histogram: percentiles with bounded error, mergeable.

Percentiles cannot be averaged across processes or endpoints; histograms can be
added. Record values in seconds; they are stored as integer microseconds with
3 significant digits (0.1% error), from 1 µs to 1 hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram  # hdrhistogram ships no types: see mypy overrides (module hdrh)

if TYPE_CHECKING:  # pandas loads on the first table: the API server records latencies without it
    import pandas as pd

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
_MAX_MICROS = 3_600_000_000


class LatencyHistogram:
    """An HDR histogram of latencies recorded in seconds."""

    def __init__(self, *, significant_figures: int = 3) -> None:
        if not 1 <= significant_figures <= 5:
            raise ValueError(f"significant_figures must be 1..5, got {significant_figures!r}")
        self._sig = significant_figures
        self._hist = HdrHistogram(1, _MAX_MICROS, significant_figures)

    def record(self, seconds: float, count: int = 1) -> None:
        """Add one latency (seconds); values are clamped into 1 µs .. 1 h."""
        micros = min(max(int(round(seconds * 1e6)), 1), _MAX_MICROS)
        self._hist.record_value(micros, count)

    def record_corrected(self, seconds: float, expected_interval: float) -> None:
        """Record with coordinated-omission correction for a closed loop paced at ``expected_interval``."""
        micros = min(max(int(round(seconds * 1e6)), 1), _MAX_MICROS)
        self._hist.record_corrected_value(micros, max(int(expected_interval * 1e6), 1))

    def record_many(self, seconds: Iterable[float]) -> LatencyHistogram:
        """Record every value of ``seconds``; returns self for chaining."""
        for value in seconds:
            self.record(value)
        return self

    @classmethod
    def from_samples(cls, seconds: Iterable[float]) -> LatencyHistogram:
        """A histogram holding ``seconds``."""
        return cls().record_many(seconds)

    @property
    def count(self) -> int:
        """Number of recorded values."""
        return int(self._hist.get_total_count())

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0 < p <= 100) in seconds."""
        if not 0 < p <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {p!r}")
        if self.count == 0:
            raise ValueError("the histogram is empty: record values before asking for percentiles")
        return float(self._hist.get_value_at_percentile(p)) / 1e6

    def percentiles(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, float]:
        """``{"p50": s, "p90": s, ...}`` plus ``min``, ``max`` and ``count``."""
        out = {f"p{p:g}": self.percentile(p) for p in ps}
        out["min"] = self._hist.get_min_value() / 1e6
        out["max"] = self._hist.get_max_value() / 1e6
        out["count"] = self.count
        return out

    @property
    def mean(self) -> float:
        """Mean in seconds (report it next to percentiles, never alone)."""
        return float(self._hist.get_mean_value()) / 1e6

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s counts into this histogram (in place); returns self."""
        self._hist.add(other._hist)
        return self

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram(significant_figures=self._sig).merge(self).merge(other)

    def encode(self) -> str:
        """Compressed, base64 form for sending across processes (see :meth:`decode`)."""
        return str(self._hist.encode().decode("ascii"))

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        """Rebuild a histogram from :meth:`encode` output, at the precision it was recorded with
        (a per-second histogram keeps 2 significant figures: decoded into 3, its percentiles moved)."""
        raw = HdrHistogram.decode(encoded.encode("ascii"))
        hist = cls(significant_figures=int(raw.significant_figures))
        hist._hist.add(raw)
        return hist

    def spectrum(self, *, ticks_per_half_distance: int = 5) -> pd.DataFrame:
        """The percentile spectrum (percentile, seconds) for a latency-by-percentile chart."""
        import pandas as pd

        rows = [(item.percentile_level_iterated_to, item.value_iterated_to / 1e6)
                for item in self._hist.get_percentile_iterator(ticks_per_half_distance)]
        return pd.DataFrame(rows, columns=["percentile", "seconds"])

    def __repr__(self) -> str:
        if not self.count:
            return "<LatencyHistogram empty>"
        p = self.percentiles()
        return (f"<LatencyHistogram n={p['count']} p50={p['p50'] * 1e3:.3f}ms "
                f"p99={p['p99'] * 1e3:.3f}ms max={p['max'] * 1e3:.3f}ms>")


def percentile_table(histograms: dict[str, LatencyHistogram],
                     ps: Sequence[float] = DEFAULT_PERCENTILES) -> pd.DataFrame:
    """One row per named histogram with its percentiles in milliseconds."""
    import pandas as pd

    rows = {}
    for name, hist in histograms.items():
        p = hist.percentiles(ps)
        rows[name] = {k: (v * 1e3 if k != "count" else v) for k, v in p.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns = [c if c == "count" else f"{c}_ms" for c in frame.columns]
    return frame

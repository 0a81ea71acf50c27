"""What a load run measured: per-endpoint HDR histograms, time series, status and error counts.

A :class:`LoadResult` is filled by one generator process and travels as JSON
(:meth:`LoadResult.to_dict`): histograms are HDR-encoded, so results from several
processes are **merged** (:func:`merge_results`) by adding histograms and counts,
never by averaging percentiles.

**Accounting.** Every request a model schedules ends in exactly one bucket:
``completed`` (a response below 500), ``failed`` (a 5xx response or a transport
failure), ``timed_out`` (no answer within the timeout, including requests still in
flight when the run ended) or ``dropped`` (never sent: no connection came free before
its timeout, or the backlog was full). ``scheduled == completed + failed + timed_out +
dropped`` holds for every result (:meth:`LoadResult.check_accounting`). Timed-out and
dropped requests enter the latency histograms at the time they had waited when they
were given up (an arrival refused by a full backlog, at the timeout it was denied):
those samples are **censored** (the true latency is at least that), so percentiles
above ``censored_above`` are lower bounds, never flattering guesses.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perf.measure.latency import LatencyHistogram

if TYPE_CHECKING:  # pandas loads on the first frame: load generators and Locust workers never need it
    import pandas as pd

#: The name of the histogram holding every endpoint's latencies together.
ALL = "ALL"


@dataclass
class LoadResult:
    """One run (or several merged). Latencies in seconds; ``t`` offsets from the run's start.

    ``histograms`` hold the latency users saw: for an open model it is measured from
    each request's *scheduled* send time (coordinated omission corrected); ``naive``
    holds the same requests measured from their actual send time, for contrast.
    """

    driver: str = ""
    model: str = ""
    duration: float = 0.0
    offered_rate: float | None = None
    histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    naive: dict[str, LatencyHistogram] = field(default_factory=dict)
    status_counts: Counter[int] = field(default_factory=Counter)
    body_bytes: Counter[str] = field(default_factory=Counter)  # endpoint -> response body bytes, as sent on the wire
    errors: Counter[str] = field(default_factory=Counter)
    given_up: Counter[str] = field(default_factory=Counter)  # endpoint -> timed out + dropped
    series: dict[int, list[int]] = field(default_factory=dict)  # second -> [completed, errors]
    series_hist: dict[int, LatencyHistogram] = field(default_factory=dict)
    server_timing: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # endpoint -> part -> [sum ms, n]
    late: int = 0
    scheduled: int = 0
    timed_out: int = 0
    dropped: int = 0
    client_cpu: float = 0.0  # CPU seconds the generator used
    processes: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    # -- recording ---------------------------------------------------------------------
    def _hist(self, table: dict[str, LatencyHistogram], name: str) -> LatencyHistogram:
        hist = table.get(name)
        if hist is None:
            hist = table[name] = LatencyHistogram()
        return hist

    def record(self, endpoint: str, latency: float, status: int, t: float, *,
               naive: float | None = None, server_timing: str | None = None, nbytes: int | None = None) -> None:
        """One completed response: ``latency`` seconds, at ``t`` seconds into the run, ``nbytes`` of body."""
        self._hist(self.histograms, endpoint).record(latency)
        if nbytes:
            self.body_bytes[endpoint] += nbytes
        if naive is not None:
            self._hist(self.naive, endpoint).record(naive)
        self.status_counts[status] += 1
        bucket, per_second = self._second(t)
        bucket[0] += 1
        if status >= 500:
            bucket[1] += 1
        per_second.record(latency)
        if server_timing:
            self._add_server_timing(endpoint, server_timing)

    def record_error(self, endpoint: str, kind: str, t: float) -> None:
        """A request that failed without a response (``kind``: connect, reset, protocol...)."""
        if kind == "timeout":
            raise ValueError("kind 'timeout' is a give-up, not a failure: call record_given_up(..., dropped=False)")
        self.errors[f"{endpoint}: {kind}"] += 1
        self.series.setdefault(int(t), [0, 0])[1] += 1

    def record_given_up(self, endpoint: str, waited: float, t: float, *, dropped: bool) -> None:
        """A request given up after ``waited`` seconds (from its schedule): timed out, or ``dropped`` unsent.

        The wait enters the latency histograms as a censored sample: its true latency is at least that.
        """
        self.given_up[endpoint] += 1
        if dropped:
            self.dropped += 1
        else:
            self.timed_out += 1
        self._hist(self.histograms, endpoint).record(waited)
        bucket, per_second = self._second(t)
        bucket[1] += 1
        per_second.record(waited)

    def _second(self, t: float) -> tuple[list[int], LatencyHistogram]:
        """The second ``t`` falls in: its ``[responses, errors]`` counters and its latency histogram."""
        second = int(t)
        bucket = self.series.get(second)
        if bucket is None:
            bucket = self.series[second] = [0, 0]
        per_second = self.series_hist.get(second)
        if per_second is None:  # two significant digits are plenty for a per-second line
            per_second = self.series_hist[second] = LatencyHistogram(significant_figures=2)
        return bucket, per_second

    def _add_server_timing(self, endpoint: str, header: str) -> None:
        parts = self.server_timing.setdefault(endpoint, {})
        for name, ms in _parsed_timing(header):
            entry = parts.setdefault(name, [0.0, 0])
            entry[0] += ms
            entry[1] += 1

    # -- reading -----------------------------------------------------------------------
    @property
    def responses(self) -> int:
        """Responses received (any status)."""
        return sum(self.status_counts.values())

    def bytes_per_response(self) -> float:
        """Mean response body bytes as received (compressed when the server compressed); NaN with none."""
        return sum(self.body_bytes.values()) / self.responses if self.responses else float("nan")

    @property
    def completed(self) -> int:
        """Responses with a status below 500."""
        return sum(n for s, n in self.status_counts.items() if s < 500)

    @property
    def failed(self) -> int:
        """Responses with status >= 500 plus transport failures (connect, reset, protocol)."""
        return sum(n for s, n in self.status_counts.items() if s >= 500) + sum(self.errors.values())

    @property
    def accounted(self) -> int:
        """``completed + failed + timed_out + dropped``: equals :attr:`scheduled` after a run."""
        return self.completed + self.failed + self.timed_out + self.dropped

    @property
    def censored(self) -> int:
        """Latency samples that are give-ups (timed out or dropped): lower bounds, not measurements."""
        return self.timed_out + self.dropped

    @property
    def censored_above(self) -> float | None:
        """The percentile above which the overall latencies are censored (None when nothing was given up)."""
        total = self.overall().count
        if not self.censored or not total:
            return None
        return 100.0 * (1 - self.censored / total)

    def check_accounting(self) -> None:
        """Raise ``RuntimeError`` unless ``scheduled == completed + failed + timed_out + dropped``."""
        if self.scheduled != self.accounted:
            raise RuntimeError(
                f"accounting broken: scheduled {self.scheduled} != completed {self.completed} + failed "
                f"{self.failed} + timed_out {self.timed_out} + dropped {self.dropped} (= {self.accounted})")

    @property
    def error_rate(self) -> float:
        """``(failed + timed_out + dropped) / scheduled``; 0.0 for an empty run."""
        total = max(self.scheduled, self.accounted)
        return (self.failed + self.timed_out + self.dropped) / total if total else 0.0

    @property
    def throughput(self) -> float:
        """Responses (any status) per second of the run."""
        return self.responses / self.duration if self.duration > 0 else 0.0

    @property
    def client_cpu_fraction(self) -> float:
        """Generator CPU seconds per wall second per process (1.0 = one busy core each)."""
        return self.client_cpu / (self.duration * self.processes) if self.duration > 0 else 0.0

    def overall(self, *, naive: bool = False) -> LatencyHistogram:
        """Every endpoint's latencies in one histogram."""
        total = LatencyHistogram()
        for hist in (self.naive if naive else self.histograms).values():
            total.merge(hist)
        return total

    def summary(self) -> pd.DataFrame:
        """One row per endpoint (plus ``ALL``): latency samples, how many are censored give-ups,
        answered req/s and latency percentiles in ms (censored samples included)."""
        import pandas as pd

        rows = {}
        for name, hist in {**self.histograms, ALL: self.overall()}.items():
            if hist.count == 0:
                continue
            p = hist.percentiles((50.0, 90.0, 99.0, 99.9))
            censored = self.censored if name == ALL else self.given_up.get(name, 0)
            answered = hist.count - censored
            rows[name] = {"count": hist.count, "censored": censored,
                          "rps": answered / self.duration if self.duration else 0.0,
                          **{f"{k}_ms": v * 1e3 for k, v in p.items() if k != "count"}}
        return pd.DataFrame.from_dict(rows, orient="index")

    def timeseries(self) -> pd.DataFrame:
        """Per second: completed responses, errors, p50 and p99 latency (ms)."""
        import pandas as pd

        rows = []
        for second in sorted(self.series):
            done, errors = self.series[second]
            hist = self.series_hist.get(second)
            p50 = hist.percentile(50) * 1e3 if hist and hist.count else float("nan")
            p99 = hist.percentile(99) * 1e3 if hist and hist.count else float("nan")
            rows.append({"second": second, "rps": done, "errors": errors, "p50_ms": p50, "p99_ms": p99})
        return pd.DataFrame(rows, columns=["second", "rps", "errors", "p50_ms", "p99_ms"])

    def server_breakdown(self) -> pd.DataFrame:
        """Mean ``Server-Timing`` milliseconds per endpoint and part (e.g. db, cache, app)."""
        import pandas as pd

        rows = {endpoint: {part: total / n for part, (total, n) in parts.items() if n}
                for endpoint, parts in self.server_timing.items()}
        return pd.DataFrame.from_dict(rows, orient="index").fillna(0.0)

    def accounting(self) -> str:
        """``scheduled 200 = completed 49 + failed 0 + timed out 12 + dropped 139``."""
        return (f"scheduled {self.scheduled:,} = completed {self.completed:,} + failed {self.failed:,} + "
                f"timed out {self.timed_out:,} + dropped {self.dropped:,}")

    def censoring(self) -> str:
        """How much of the latency distribution is give-ups (empty when none)."""
        above = self.censored_above
        if above is None:
            return ""
        return (f"{self.censored:,} of {self.overall().count:,} latencies censored (give-ups recorded at their wait): "
                f"percentiles above p{above:.4g} are lower bounds")

    def describe(self) -> str:
        """Two lines: rate, error rate and headline percentiles; the accounting and censoring."""
        hist = self.overall()
        if hist.count == 0:
            return f"{self.driver}: no responses ({dict(self.errors)}); {self.accounting()}"
        p = hist.percentiles()
        line = (f"{self.driver} {self.model}: {self.responses:,} responses in {self.duration:.1f}s = "
                f"{self.throughput:,.0f} req/s, errors {self.error_rate:.2%}, p50 {p['p50'] * 1e3:.2f} ms, "
                f"p99 {p['p99'] * 1e3:.2f} ms, max {p['max'] * 1e3:.2f} ms"
                + (f", late {self.late}" if self.offered_rate else ""))
        censoring = self.censoring()
        return f"{line}\n{self.accounting()}" + (f"; {censoring}" if censoring else "")

    # -- transport ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (histograms HDR-encoded); :meth:`from_dict` reverses it."""
        return {
            "driver": self.driver, "model": self.model, "duration": self.duration,
            "offered_rate": self.offered_rate,
            "histograms": {k: h.encode() for k, h in self.histograms.items()},
            "naive": {k: h.encode() for k, h in self.naive.items()},
            "status_counts": {str(k): v for k, v in self.status_counts.items()},
            "body_bytes": dict(self.body_bytes),
            "errors": dict(self.errors), "given_up": dict(self.given_up),
            "series": {str(k): v for k, v in self.series.items()},
            "series_hist": {str(k): h.encode() for k, h in self.series_hist.items()},
            "server_timing": self.server_timing, "late": self.late, "scheduled": self.scheduled,
            "timed_out": self.timed_out, "dropped": self.dropped,
            "client_cpu": self.client_cpu, "processes": self.processes, "meta": self.meta,
            "summary": {"scheduled": self.scheduled, "completed": self.completed, "failed": self.failed,
                        "timed_out": self.timed_out, "dropped": self.dropped, "censored": self.censored,
                        "censored_above": self.censored_above, "throughput": self.throughput,
                        "error_rate": self.error_rate,
                        "latency_ms": ({k: (v * 1e3 if k != "count" else v)
                                        for k, v in self.overall().percentiles().items()}
                                       if self.overall().count else {})},
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. sent by another process)."""
        return cls(
            driver=data["driver"], model=data["model"], duration=data["duration"],
            offered_rate=data.get("offered_rate"),
            histograms={k: LatencyHistogram.decode(v) for k, v in data["histograms"].items()},
            naive={k: LatencyHistogram.decode(v) for k, v in data["naive"].items()},
            status_counts=Counter({int(k): v for k, v in data["status_counts"].items()}),
            body_bytes=Counter(data.get("body_bytes", {})),
            errors=Counter(data["errors"]), given_up=Counter(data.get("given_up", {})),
            series={int(k): list(v) for k, v in data["series"].items()},
            series_hist={int(k): LatencyHistogram.decode(v) for k, v in data["series_hist"].items()},
            server_timing={e: {p: list(v) for p, v in parts.items()} for e, parts in data["server_timing"].items()},
            late=data["late"], scheduled=data.get("scheduled", 0), timed_out=data.get("timed_out", 0),
            dropped=data["dropped"], client_cpu=data["client_cpu"],
            processes=data.get("processes", 1), meta=dict(data.get("meta", {})),
        )

    def merge(self, other: LoadResult) -> LoadResult:
        """Add ``other`` (run at the same time by another process) into this result; returns self."""
        for mine, theirs in ((self.histograms, other.histograms), (self.naive, other.naive),
                             (self.series_hist, other.series_hist)):
            for key, hist in theirs.items():
                self._hist(mine, key).merge(hist)  # type: ignore[arg-type]
        self.status_counts.update(other.status_counts)
        self.body_bytes.update(other.body_bytes)
        self.errors.update(other.errors)
        self.given_up.update(other.given_up)
        for second, (done, errors) in other.series.items():
            bucket = self.series.setdefault(second, [0, 0])
            bucket[0] += done
            bucket[1] += errors
        for endpoint, parts in other.server_timing.items():
            mine_parts = self.server_timing.setdefault(endpoint, {})
            for part, (total, n) in parts.items():
                entry = mine_parts.setdefault(part, [0.0, 0])
                entry[0] += total
                entry[1] += n
        self.duration = max(self.duration, other.duration)
        if other.offered_rate is not None:
            self.offered_rate = (self.offered_rate or 0.0) + other.offered_rate
        self.late += other.late
        self.scheduled += other.scheduled
        self.timed_out += other.timed_out
        self.dropped += other.dropped
        self.client_cpu += other.client_cpu
        self.processes += other.processes
        return self


class BatchRecorder:
    """Records into ``result`` like :meth:`LoadResult.record`, at the cost of a few dict updates per request.

    A load generator's per-request bookkeeping competes with sending requests: an HDR
    record costs microseconds of Python, a dict increment a fraction of one. Latencies are
    counted per integer microsecond (the histograms' own resolution) and added to the
    histograms, with their counts, by :meth:`flush`; every counter (statuses, series,
    Server-Timing, give-ups) is written through at once, so the accounting never lags.
    Call :meth:`flush` before reading the histograms.
    """

    __slots__ = ("_distinct", "_pending", "max_pending", "result")

    def __init__(self, result: LoadResult, *, max_pending: int = 100_000) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1 distinct values, got {max_pending!r}")
        self.result = result
        #: Distinct pending values that force a flush (bounds memory on a very wide spread).
        self.max_pending = max_pending
        self._pending: dict[LatencyHistogram, dict[int, int]] = {}
        self._distinct = 0

    def _add(self, hist: LatencyHistogram, seconds: float) -> None:
        counts = self._pending.get(hist)
        if counts is None:
            counts = self._pending[hist] = {}
        micros = round(seconds * 1e6)
        n = counts.get(micros)
        if n is None:
            counts[micros] = 1
            self._distinct += 1
            if self._distinct >= self.max_pending:
                self.flush()
        else:
            counts[micros] = n + 1

    def record(self, endpoint: str, latency: float, status: int, t: float, *,
               naive: float | None = None, server_timing: str | None = None, nbytes: int | None = None) -> None:
        """See :meth:`LoadResult.record`."""
        result = self.result
        if nbytes:
            result.body_bytes[endpoint] += nbytes
        self._add(result._hist(result.histograms, endpoint), latency)
        if naive is not None:
            self._add(result._hist(result.naive, endpoint), naive)
        result.status_counts[status] += 1
        bucket, per_second = result._second(t)
        bucket[0] += 1
        if status >= 500:
            bucket[1] += 1
        self._add(per_second, latency)
        if server_timing:
            result._add_server_timing(endpoint, server_timing)

    def record_error(self, endpoint: str, kind: str, t: float) -> None:
        """See :meth:`LoadResult.record_error`."""
        self.result.record_error(endpoint, kind, t)

    def record_given_up(self, endpoint: str, waited: float, t: float, *, dropped: bool) -> None:
        """See :meth:`LoadResult.record_given_up` (rare: recorded at once)."""
        self.result.record_given_up(endpoint, waited, t, dropped=dropped)

    def flush(self) -> LoadResult:
        """Add the pending latencies to the result's histograms; returns the result."""
        for hist, counts in self._pending.items():
            for micros, n in counts.items():
                hist.record(micros / 1e6, n)
        self._pending.clear()
        self._distinct = 0
        return self.result


def merge_results(results: Iterable[LoadResult]) -> LoadResult:
    """One result from several processes' results (histograms added, counts summed)."""
    results = list(results)
    if not results:
        raise ValueError("results is empty: pass at least one LoadResult to merge")
    first = results[0]
    merged = LoadResult(driver=first.driver, model=first.model, processes=0, meta=dict(first.meta))
    for result in results:
        merged.merge(result)
    return merged


_TIMING = re.compile(r'\s*([^\s,;]+)[^,]*?;\s*dur\s*=\s*"?([0-9.eE+-]+)', re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # a server's headers repeat (durations to a few digits): parse each once
def _parsed_timing(header: str) -> tuple[tuple[str, float], ...]:
    return tuple(parse_server_timing(header).items())


def parse_server_timing(header: str) -> dict[str, float]:
    """``"db;dur=1.2, app;dur=3"`` -> ``{"db": 1.2, "app": 3.0}`` (entries without ``dur`` skipped)."""
    out: dict[str, float] = defaultdict(float)
    for entry in header.split(","):
        match = _TIMING.match(entry)
        if match:
            try:
                out[match.group(1)] += float(match.group(2))
            except ValueError:
                pass
    return dict(out)

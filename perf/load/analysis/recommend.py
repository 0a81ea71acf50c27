"""Recommendations: rules over a run's measurements that print prioritized actions with evidence.

Each rule looks at one measurement and fires only when it warrants an action, and
its evidence cites that number; a healthy run yields no recommendations. A run that
is **client-bound** (decided by one rule, :meth:`Calibration.is_client_bound
<perf.load.analysis.calibrate.Calibration.is_client_bound>`: throughput within 20% of
the generator's measured ceiling) gets generator fixes only: its server numbers are a
floor, so no server change can be read from them. Priority 1 means "the numbers are not
trustworthy or the service is failing: fix first"; 2 "the main bottleneck";
3 "worth a look".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from perf.load.analysis.bottleneck import server_shares, time_breakdown
from perf.load.analysis.calibrate import Calibration, flag_client_bound
from perf.load.results import LoadResult


@dataclass(frozen=True)
class Recommendation:
    """One action, why (``evidence``, with the numbers) and how urgent (1 = first)."""

    priority: int
    area: str
    action: str
    evidence: str

    def describe(self) -> str:
        """``[P1 client] evidence → action``."""
        return f"[P{self.priority} {self.area}] {self.evidence} → {self.action}"


@dataclass
class Measurements:
    """What the rules look at; leave a field None when it was not measured.

    ``client_cpu``: generator CPU as a fraction of one core per process (shown, never
    decisive: it flips with whatever else the machine runs); ``client_bound`` and
    ``client_bound_evidence``: the calibration rule's verdict and its numbers;
    ``second_worker_gain``: how much a measured second worker improved things (2-worker
    throughput over 1-worker, or 1-worker p99 over 2-worker; > 1 is better), when measured;
    ``server_cpu``: server CPU in cores, with ``workers`` processes; ``server_shares``:
    each ``Server-Timing`` part's share of server time; ``outside_share``: the share of
    client-seen latency spent outside the server; ``hit_ratio``: cache hits per endpoint.
    """

    client_cpu: float | None = None
    client_bound: bool = False
    client_bound_evidence: str = ""
    error_rate: float = 0.0
    errors: Mapping[str, int] = field(default_factory=dict)
    offered: int = 0
    late: int = 0
    timed_out: int = 0
    dropped: int = 0
    pool_wait_p99_ms: float | None = None
    pool_max_size: int | None = None
    hit_ratio: Mapping[str, float] = field(default_factory=dict)
    server_shares: Mapping[str, float] = field(default_factory=dict)
    outside_share: float | None = None
    server_cpu: float | None = None
    workers: int | None = None
    second_worker_gain: float | None = None
    p99_ms: float | None = None


def measurements_from(result: LoadResult, *, calibration: Calibration | None = None,
                      **extra: object) -> Measurements:
    """Fill :class:`Measurements` from a result; ``extra`` sets the server-side fields.

    With ``calibration``, the client-bound verdict comes from :func:`flag_client_bound`
    (the same rule the CLI's warning uses).
    """
    breakdown = time_breakdown(result)
    outside = None
    if len(breakdown) and "server_ms" in breakdown and breakdown["server_ms"].sum() > 0:
        weights = breakdown["client_ms"]
        outside = float((breakdown["outside_server_ms"]).sum() / weights.sum()) if weights.sum() else None
    offered = max(result.scheduled, result.accounted)
    p99 = result.overall().percentile(99) * 1e3 if result.overall().count else None
    m = Measurements(client_cpu=result.client_cpu_fraction, error_rate=result.error_rate,
                     errors=dict(result.errors), offered=offered, late=result.late, dropped=result.dropped,
                     timed_out=result.timed_out,
                     server_shares=server_shares(result), outside_share=outside, p99_ms=p99)
    for key, value in extra.items():
        if not hasattr(m, key):
            raise TypeError(f"measurements_from got unknown field {key!r}; fields are "
                            f"{sorted(Measurements.__dataclass_fields__)}")
        setattr(m, key, value)
    if calibration is not None:
        warning = flag_client_bound(result, calibration)
        m.client_bound, m.client_bound_evidence = warning is not None, warning or ""
    return m


def recommend(m: Measurements, *, hit_ratio_floor: float = 0.8, pool_wait_ms: float = 5.0,
              busy: float = 0.9, dominant: float = 0.5, error_budget: float = 0.01, late_budget: float = 0.05,
              worker_gain_floor: float = 1.1) -> list[Recommendation]:
    """The actions ``m`` warrants, most urgent first (empty for a healthy run).

    Thresholds: ``error_budget`` (share of requests failed), ``late_budget`` (share late or
    dropped: past capacity), ``busy`` (server CPU per worker), ``worker_gain_floor`` (a second
    worker's measured gain below which adding one is not advised), ``pool_wait_ms`` (pool wait
    p99), ``hit_ratio_floor`` (cache) and ``dominant`` (a Server-Timing phase's share).
    """
    out: list[Recommendation] = []
    if m.client_bound:
        evidence = m.client_bound_evidence or "throughput at the generator's calibrated ceiling"
        if m.client_cpu is not None:
            evidence += f"; generator CPU {m.client_cpu:.0%} of a core"
        # The server's numbers are a floor here: nothing about the server can be concluded.
        return [Recommendation(1, "client", "client-bound, numbers are a floor: add generator processes "
                               "(--processes), move the generator to other cores, or use another engine (wrk)",
                               evidence)]
    if m.error_rate > error_budget:
        counts = {**m.errors, **({"timed out": m.timed_out} if m.timed_out else {}),
                  **({"dropped": m.dropped} if m.dropped else {})}
        top = ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
        out.append(Recommendation(1, "errors", "fix the failures before tuning latency",
                                  f"error rate {m.error_rate:.1%}" + (f" ({top})" if top else "")))
    if m.offered and (m.dropped + m.late) / m.offered > late_budget:
        out.append(Recommendation(1, "saturation", "the offered rate is past capacity: lower it, or find "
                                  "the knee with a stress ramp",
                                  f"{m.late:,} late and {m.dropped:,} dropped of {m.offered:,} requests"))
    if m.server_cpu is not None and m.workers and m.server_cpu / m.workers >= busy:
        cpu = f"server CPU {m.server_cpu:.2f} cores over {m.workers} worker(s)"
        if m.second_worker_gain is not None and m.second_worker_gain < worker_gain_floor:
            out.append(Recommendation(2, "server", "server CPU-bound, yet a second worker did not help: make "
                                      "each request cheaper (profile it) or give the server cores of its own",
                                      f"{cpu}; a second worker measured {m.second_worker_gain:.2f}x"))
        else:
            out.append(Recommendation(2, "server", f"server CPU-bound: add a worker (have {m.workers})", cpu))
    if m.pool_wait_p99_ms is not None and m.pool_wait_p99_ms > pool_wait_ms:
        size = f" at max_size={m.pool_max_size}" if m.pool_max_size else ""
        out.append(Recommendation(2, "pool", "raise the pool's max_size (or shorten transactions)",
                                  f"pool wait p99 {m.pool_wait_p99_ms:.0f} ms{size}"))
    for endpoint, ratio in sorted(m.hit_ratio.items(), key=lambda kv: kv[1]):
        if ratio < hit_ratio_floor:
            out.append(Recommendation(2, "cache", f"warm the hottest keys of {endpoint} (e.g. the first "
                                      "pages per category) or lengthen their TTL",
                                      f"hit ratio {ratio:.0%} on {endpoint}"))
    shares = dict(m.server_shares)
    if shares.get("db", 0.0) >= dominant:
        out.append(Recommendation(2, "db", "the database dominates: check EXPLAIN and indexes, use keyset "
                                  "pages, batch N+1 queries, cache hot reads",
                                  f"db {shares['db']:.0%} of server time"))
    if shares.get("app", 0.0) >= dominant:
        out.append(Recommendation(2, "framework", "framework+middleware dominate: move middleware to pure "
                                  "ASGI and trim per-request work (profile the handler)",
                                  f"framework+middleware (app) {shares['app']:.0%} of server time"))
    if m.outside_share is not None and m.outside_share >= dominant and not m.client_bound:
        out.append(Recommendation(3, "network", "most latency is outside the server: check payload size "
                                  "(compression), connection reuse and queueing in front of the server",
                                  f"{m.outside_share:.0%} of client-seen latency outside Server-Timing"))
    return sorted(out, key=lambda r: r.priority)

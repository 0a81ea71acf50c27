"""The stall experiment (Gil Tene's "How NOT to measure latency"): stop the server mid-run, read the p99.

The server process is stopped with ``SIGSTOP`` for ``stall`` seconds from ``stall_at``
seconds into an open-model run, then continued. An honest load tester reports a p99
of at least ``min(stall, timeout)`` minus a little: every request due during the stall
waited that long or was given up after its timeout. One that loses the requests it
never sent, or those still in flight at the end, reports the fast requests only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from perf.load.analysis.slo import SloCheck, check_slos
from perf.load.models import OpenModel
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario
from perf.services.process import freeze


@dataclass
class StallRun:
    """One stall experiment: its settings, the result and the SLO checks."""

    stall: float
    stall_at: float
    timeout: float
    result: LoadResult
    checks: list[SloCheck] = field(default_factory=list)

    @property
    def floor(self) -> float:
        """``min(stall, timeout)``: the least an honest p99 can report (seconds)."""
        return min(self.stall, self.timeout)

    def row(self) -> dict[str, float | int | bool]:
        """The figures a benchmark prints: stall, p99, max, counts per bucket, SLO verdict."""
        r = self.result
        p = r.overall().percentiles()
        return {"stall_s": self.stall, "timeout_s": self.timeout, "p99_ms": p["p99"] * 1e3,
                "max_ms": p["max"] * 1e3, "scheduled": r.scheduled, "completed": r.completed,
                "failed": r.failed, "timed_out": r.timed_out, "dropped": r.dropped,
                "censored_above": r.censored_above or 100.0, "slo_met": all(c.met for c in self.checks)}


async def _stall(pid: int, at: float, seconds: float) -> None:
    await asyncio.sleep(at)
    await freeze(pid, seconds)


async def run_stalled(base_url: str, pid: int, *, stall: float, stall_at: float = 0.5, rate: float = 100.0,
                      duration: float = 2.0, connections: int = 4, max_backlog: int = 10_000, timeout: float = 1.0,
                      slos: Sequence[str] = ("p99<100ms",), scenario: Scenario | None = None) -> StallRun:
    """Run an open model against ``base_url`` while the server ``pid`` is stopped for ``stall`` seconds."""
    if stall <= 0 or stall_at < 0:
        raise ValueError(f"stall must be > 0 and stall_at >= 0 seconds, got {stall!r} and {stall_at!r}")
    stopper = asyncio.create_task(_stall(pid, stall_at, stall))
    try:
        result = await run_load(base_url, model=OpenModel(rate=rate, duration=duration, connections=connections,
                                                                    max_backlog=max_backlog),
                                scenario=scenario, timeout=timeout)
    finally:
        await stopper  # always continue the server, even when the run failed
    return StallRun(stall, stall_at, timeout, result, check_slos(result, slos))

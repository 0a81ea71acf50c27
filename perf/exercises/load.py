"""Exercises for notebook 07: SLOs that tell a slow build from a fast one, and an error rate
that counts every scheduled request.

Both checks put a real server (:class:`perf.load.demo_server.TestServer`, an endpoint
``/delay/<ms>``) under real load with :func:`perf.load.run_load`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise
from perf.load import ClosedModel, LoadResult, OpenModel, Scenario, check_slos, run_load
from perf.load.analysis.slo import SloError, parse_slo
from perf.load.demo_server import TestServer

#: The "baseline" build answers in 100 ms; the "optimised" one at once. 100x apart: no machine
#: load can make them trade places.
BASELINE_PATH, OPTIMISED_PATH = "/delay/100", "/delay/0"


@exercise("07.slo", title="an SLO gate that fails the slow build and passes the fast one", answer="SLOS",
          nudge="Compare the two builds' percentiles in the table above the exercise: where do they differ?")
async def slo(slos: list[str], *, settings: Settings, **_ignored: Any) -> Report:
    """``SLOS`` (strings like ``"p99<50ms"``) must include a latency percentile and an error-rate
    objective, fail on the baseline build (``/delay/100``) and all pass on the optimised one."""
    report = Report(hint="A gate needs a latency percentile (e.g. p95 or p99 with a threshold between what "
                         "the two builds measure) and an error budget ('errors<…%'); check each against "
                         "`check_slos(result, SLOS)` on the two results.")
    if not isinstance(slos, list | tuple) or not slos:
        report.require("SLOS is a non-empty list of strings", False, repr(slos)[:60])
        return report
    parsed = []
    for text in slos:
        try:
            parsed.append(parse_slo(text))
        except (SloError, TypeError) as exc:
            report.require(f"{text!r} parses", False, str(exc)[:120])
            return report
    report.require("a latency percentile objective", any(s.metric.startswith("p") for s in parsed),
                   ", ".join(s.metric for s in parsed))
    report.require("an error-rate objective", any(s.metric == "errors" for s in parsed),
                   ", ".join(s.metric for s in parsed))
    model = ClosedModel(users=4, duration=1.5)
    with TestServer() as server:
        results: dict[str, LoadResult] = {}
        for name, path in (("baseline", BASELINE_PATH), ("optimised", OPTIMISED_PATH)):
            results[name] = await run_load(server.url, model=model, scenario=Scenario.single(path), timeout=5.0)
    base = check_slos(results["baseline"], parsed)
    fast = check_slos(results["optimised"], parsed)
    report.require("at least one objective fails on the baseline build", not all(c.met for c in base),
                   "; ".join(f"{c.slo.text}: {c.value:.4g}" for c in base))
    report.require("every objective passes on the optimised build", all(c.met for c in fast),
                   "; ".join(f"{c.slo.text}: {c.value:.4g}{'' if c.met else ' FAIL'}" for c in fast))
    return report


@exercise("07.error_rate", title="an error rate that counts every scheduled request", answer="error_rate",
          nudge="In the stalled run, how many requests got a status code at all?")
async def error_rate(rate_of: Callable[[LoadResult], float], *, settings: Settings, **_ignored: Any) -> Report:
    """``error_rate(result)`` is the share of *scheduled* requests that did not complete: failed,
    timed out or dropped. The check runs a load where every request times out."""
    report = Report(hint="A request that timed out or was never sent has no status code, yet the user saw it "
                         "fail: the rate's denominator is every request the run meant to send, and its numerator "
                         "every one of them that did not succeed, whatever the reason (LoadResult counts each).")
    with TestServer() as server:
        stalled = await run_load(server.url, model=OpenModel(rate=40, duration=1.0, connections=8),
                                 scenario=Scenario.single("/delay/2000"), timeout=0.2)
        healthy = await run_load(server.url, model=OpenModel(rate=40, duration=1.0, connections=8),
                                 scenario=Scenario.single("/delay/0"), timeout=5.0)
    got = await call_learner(report, "error_rate(stalled_result)", rate_of, stalled, hint=report.hint)
    report.require("a run where every request timed out has an error rate of 100%",
                   isinstance(got, int | float) and abs(float(got) - 1.0) < 1e-9,
                   f"{got!r} for scheduled {stalled.scheduled}, timed out {stalled.timed_out}, "
                   f"dropped {stalled.dropped}, responses {stalled.responses}")
    ok = await call_learner(report, "error_rate(healthy_result)", rate_of, healthy, hint=report.hint)
    report.require("a healthy run has an error rate of 0", isinstance(ok, int | float) and float(ok) == 0.0,
                   repr(ok))
    return report

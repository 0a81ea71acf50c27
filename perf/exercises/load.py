"""Exercises for notebook 07: SLOs that tell a slow build from a fast one, an error rate that
counts every scheduled request, and the highest rate a stress ramp shows the server sustains.

Every check puts a real server (:class:`perf.load.demo_server.TestServer`, an endpoint
``/delay/<ms>``) under real load with :func:`perf.load.run_load` (the stress check with
:func:`perf.load.stress`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise
from perf.load import ClosedModel, LoadResult, OpenModel, Scenario, check_slos, run_load, stress
from perf.load.analysis.slo import SloError, parse_slo
from perf.load.demo_server import TestServer
from perf.runs import replayable

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


#: A stress round as the learner gets it: ``offered_rps``, ``achieved_rps``, ``p99_ms``, ``repeat``.
Round = dict[str, float]
#: The real stress: one connection to ``/delay/10`` serves at most ~100 req/s, so 25 and 50 req/s
#: sit well under it and 100 req/s at or past it (200 runs only if 100 passed). Every rate times
#: the step's length is a whole number of requests, so the product judges each step against
#: exactly the offered rate the learner is given (its offered rate is requests over seconds).
STRESS_PATH, STRESS_RATES, STRESS_SECONDS = "/delay/10", (25.0, 50.0, 100.0, 200.0), 0.5
#: The p99 SLO of every case; the synthetic rounds sit far from it (20 ms passing, 180 ms failing).
SLO_MS = 100.0


def _rounds_at(rate: float, outcomes: str, first: int = 1) -> list[Round]:
    """Rounds at ``rate``, one per letter: P passes, L misses the p99 SLO, T delivers < 95% of the rate."""
    achieved = {"P": 0.99, "L": 0.98, "T": 0.80}
    p99 = {"P": 20.0, "L": 180.0, "T": 40.0}
    return [{"offered_rps": rate, "achieved_rps": round(achieved[o] * rate, 2), "p99_ms": p99[o],
             "repeat": first + i} for i, o in enumerate(outcomes)]


#: (what the case shows, its rounds in the order measured, the answer). The first three are shapes
#: ``perf.load.stress`` produces: each rate once on the way up, then repeats of the best passing
#: one (a rate that loses two of its three repeats is left after those two), stepping down on a loss.
KNEE_CASES: list[tuple[str, list[Round], float | None]] = [
    ("a clean ramp (25, 50 passed, 100 delivered too little; 50 held over 3 repeats) gives 50",
     _rounds_at(25, "P") + _rounds_at(50, "P") + _rounds_at(100, "T") + _rounds_at(50, "PPP", first=2), 50.0),
    ("a rate whose first round passed but whose repeats failed (100) is not taken: 50",
     _rounds_at(25, "P") + _rounds_at(50, "P") + _rounds_at(100, "P") + _rounds_at(150, "L")
     + _rounds_at(100, "LL", first=2) + _rounds_at(50, "PPP", first=2), 50.0),
    ("no rate held over its repeats gives None",
     _rounds_at(25, "P") + _rounds_at(50, "L") + _rounds_at(25, "TL", first=2), None),
    ("two passing rounds (75) are not evidence enough: 50",
     _rounds_at(25, "PPP") + _rounds_at(50, "PPP") + _rounds_at(75, "PP") + _rounds_at(100, "LLL"), 50.0),
    ("a sustained rate above a failing one (75 above 50) is not the knee: 25",
     _rounds_at(25, "PPP") + _rounds_at(50, "LLP") + _rounds_at(75, "PPP") + _rounds_at(100, "LLL"), 25.0),
]


def _rounds_of(steps: pd.DataFrame) -> list[Round]:
    """A :class:`perf.load.StressReport`'s steps as the learner's rounds (``repeat`` counts per rate)."""
    seen: dict[float, int] = {}
    rounds = []
    for offered, achieved, p99 in steps[["offered", "achieved", "p99_ms"]].itertuples(index=False):
        seen[offered] = seen.get(offered, 0) + 1
        rounds.append({"offered_rps": float(offered), "achieved_rps": float(achieved), "p99_ms": float(p99),
                       "repeat": seen[offered]})
    return rounds


async def _real_stress() -> tuple[list[Round], float | None]:
    """A short stress ramp of the demo server: its rounds, and the rate ``perf.load.stress`` decided on."""
    with TestServer() as server:
        report = await stress(server.url, rates=STRESS_RATES, step_seconds=STRESS_SECONDS,
                              slos=[f"p99<{SLO_MS:g}ms"], scenario=Scenario.single(STRESS_PATH),
                              connections=1, timeout=1.0, max_refine=0, repeats=3, progress=False)
    return _rounds_of(report.steps), report.max_sustainable


def _same_rate(got: object, expected: float | None) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    return isinstance(got, int | float) and not isinstance(got, bool) and abs(float(got) - expected) < 1e-6


@exercise("07.knee", title="stress testing: the highest rate the server sustains", answer="sustainable_rate",
          nudge="Put the rounds of each rate side by side: how many rounds does each rate have, how many "
                "passed, and which rate is the first to fail on the way up?")
async def knee(rate_of: Callable[[list[Round], float], float | None], *, settings: Settings,
               **_ignored: Any) -> Report:
    """``sustainable_rate(steps, slo_p99_ms)`` is the highest offered rate the rounds show sustained,
    or None: held by most of at least 3 rounds, with no rate below it failing. The check runs
    synthetic ramps of known answer and a real stress of the demo server, whose answer is the
    one :func:`perf.load.stress` decided on the same rounds."""
    report = Report(hint="One round is a measurement, not a finding: a rate counts only when more than half of "
                         "its rounds passed (>= 95% of the rate delivered, p99 under the SLO) and it has at "
                         "least three rounds. And the answer is a knee, not a lucky peak: walk up the rates from "
                         "the lowest, stop at the first rate most of whose rounds failed, and answer the highest "
                         "rate with three or more rounds held below that point.")
    # the rounds are data, the learner's function is what is checked: a replayed notebook replays them too
    real, decided = await replayable("exercise-07.knee", _real_stress, settings=settings)
    cases = [*KNEE_CASES, (f"a real stress of the demo server ({len(real)} rounds): the rate perf.load.stress "
                           "decided on", real, decided)]
    for text, rounds, expected in cases:
        got = await call_learner(report, "sustainable_rate(steps, slo_p99_ms)", rate_of,
                                 [dict(r) for r in rounds], SLO_MS, hint=report.hint)
        ok = _same_rate(got, expected)
        report.require(text, ok, f"got {got!r}" + ("" if ok else f", expected {expected!r}"))
    return report

"""Stress: raise the arrival rate until an SLO breaks, then narrow down the knee and repeat it.

Each step is its own open-model run (latency from the scheduled send time, every
scheduled request accounted), so a saturated server shows up as queueing latency,
timeouts and drops rather than as a generator that politely slows down. The ramp:

1. **warm up** (one unmeasured step at the first rate) so caches and pools are not cold;
2. **ramp** by ``factor`` until ``stop_after_breaks`` steps miss an SLO;
3. **refine** by bisection between the last good and the first bad rate until the
   bracket is within ``bracket`` (10%): the **maximum sustainable rate** is the bottom of
   that bracket, a step that met every SLO and delivered >= 95% of what was offered;
4. **repeat** that step ``repeats`` times and report the spread, so a lucky step is seen
   as one.

The **knee** is the last rate before the median (p50) first rose past ``knee_factor`` x
the first step's: the median is what turns first when a queue forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from perf.load.analysis.slo import Slo, check_slos, parse_slo
from perf.load.drivers import Driver
from perf.load.models import OpenModel
from perf.load.progress import StepProgress, step_progress
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario


@dataclass
class StressReport:
    """Per-step measurements (``phase``: ramp, refine or repeat) and the rates derived from them."""

    steps: pd.DataFrame
    max_sustainable: float | None
    knee: float | None
    broke_at: float | None
    slos: list[str]
    bracket: tuple[float, float] | None = None
    results: list[LoadResult] = field(default_factory=list, repr=False)

    @property
    def repeats(self) -> pd.DataFrame:
        """The repeated runs of the max sustainable rate."""
        return self.steps[self.steps["phase"] == "repeat"] if len(self.steps) else self.steps

    def describe(self) -> str:
        """One paragraph for a notebook or the CLI."""
        sustain = f"{self.max_sustainable:,.0f} req/s" if self.max_sustainable else "none of the steps"
        knee = f"{self.knee:,.0f} req/s" if self.knee else "n/a"
        broke = (f"SLO ({', '.join(self.slos)}) first missed at {self.broke_at:,.0f} req/s"
                 if self.broke_at else f"no step missed the SLO ({', '.join(self.slos)})")
        text = f"max sustainable rate {sustain}; knee {knee}; {broke}"
        if self.bracket:
            low, high = self.bracket
            text += f"; bracket {low:,.0f}-{high:,.0f} req/s ({high / low - 1:.0%} wide)"
        reps = self.repeats
        if len(reps):
            text += (f"; repeated {len(reps)}x: p99 {reps['p99_ms'].min():,.1f}-{reps['p99_ms'].max():,.1f} ms "
                     f"(median {reps['p99_ms'].median():,.1f}), SLO met {int(reps['slo_met'].sum())}/{len(reps)}")
        return text


def rate_steps(start: float, *, factor: float = 1.5, max_rate: float = 100_000.0,
               max_steps: int = 12) -> list[float]:
    """``start, start*factor, ...`` up to ``max_rate`` (at most ``max_steps`` rates)."""
    if start <= 0:
        raise ValueError(f"start must be > 0 req/s, got {start!r}")
    if factor <= 1:
        raise ValueError(f"factor must be > 1 (e.g. 1.5), got {factor!r}")
    rates: list[float] = []
    rate = float(start)
    while rate <= max_rate and len(rates) < max_steps:
        rates.append(round(rate, 1))
        rate *= factor
    return rates


class _Stepper:
    def __init__(self, base_url: str, slos: list[Slo], bar: StepProgress, *, step_seconds: float,
                 scenario: Scenario | None, driver: str | Driver, connections: int, timeout: float) -> None:
        self.base_url, self.slos, self.bar = base_url, slos, bar
        self.step_seconds, self.scenario, self.driver = step_seconds, scenario, driver
        self.connections, self.timeout = connections, timeout
        self.rows: list[dict[str, object]] = []
        self.results: list[LoadResult] = []

    async def run(self, rate: float, phase: str, *, record: bool = True) -> bool:
        self.bar.step(f"{phase} {rate:,.0f} req/s")
        model = OpenModel(rate=rate, duration=self.step_seconds, connections=self.connections)
        result = await run_load(self.base_url, model=model, scenario=self.scenario, driver=self.driver,
                                timeout=self.timeout)
        met = all(c.met for c in check_slos(result, self.slos))
        ok = met and result.throughput >= 0.95 * (result.offered_rate or rate)
        if record:
            hist = result.overall()
            p = hist.percentiles() if hist.count else {"p50": float("nan"), "p99": float("nan")}
            self.rows.append({"phase": phase, "offered": rate, "achieved": result.throughput,
                              "p50_ms": p["p50"] * 1e3, "p99_ms": p["p99"] * 1e3,
                              "error_rate": result.error_rate, "late": result.late, "timed_out": result.timed_out,
                              "dropped": result.dropped, "slo_met": met, "sustained": ok,
                              "client_cpu": result.client_cpu_fraction})
            self.results.append(result)
        return ok


async def stress(base_url: str, *, rates: Sequence[float], step_seconds: float = 3.0,
                 slos: Sequence[str] = ("p99<100ms", "errors<1%"), scenario: Scenario | None = None,
                 driver: str | Driver = "builtin", connections: int = 64, timeout: float = 5.0,
                 knee_factor: float = 2.0, stop_after_breaks: int = 1, warmup: bool = True,
                 bracket: float = 0.10, max_refine: int = 6, repeats: int = 1,
                 progress: bool = True) -> StressReport:
    """Warm up, ramp through ``rates`` until an SLO breaks, bisect to a ``bracket``, repeat the knee step.

    ``repeats`` runs of the max sustainable rate give its spread (use >= 3 for numbers you
    publish); ``max_refine`` caps the bisection steps.
    """
    if not rates:
        raise ValueError("rates is empty: pass increasing rates, e.g. rate_steps(100)")
    if not 0 < bracket < 1:
        raise ValueError(f"bracket must be a fraction in (0, 1), e.g. 0.10, got {bracket!r}")
    if repeats < 0 or max_refine < 0:
        raise ValueError(f"repeats and max_refine must be >= 0, got {repeats!r} and {max_refine!r}")
    parsed = [parse_slo(s) for s in slos]
    total = int(warmup) + len(rates) + max_refine + repeats
    with step_progress(total, "stress", enabled=progress) as bar:
        stepper = _Stepper(base_url, parsed, bar, step_seconds=step_seconds, scenario=scenario, driver=driver,
                           connections=connections, timeout=timeout)
        if warmup:
            await stepper.run(rates[0], "warm-up", record=False)
        good: float | None = None
        bad: float | None = None
        breaks = 0
        for rate in rates:
            if await stepper.run(rate, "ramp"):
                good = rate if good is None else max(good, rate)
            else:
                bad = rate if bad is None else min(bad, rate)
                breaks += 1
                if breaks >= stop_after_breaks:
                    break
        for _ in range(max_refine):
            if good is None or bad is None or bad <= good * (1 + bracket):
                break
            mid = round((good + bad) / 2, 1)
            if await stepper.run(mid, "refine"):
                good = mid
            else:
                bad = mid
        if good is not None:
            for _ in range(repeats):
                await stepper.run(good, "repeat")
    steps = pd.DataFrame(stepper.rows)
    return _report(steps, [s.text for s in parsed], good, bad, knee_factor, stepper.results)


def _report(steps: pd.DataFrame, slos: list[str], good: float | None, bad: float | None, knee_factor: float,
            results: list[LoadResult]) -> StressReport:
    searched = steps[steps["phase"] != "repeat"].sort_values("offered")
    first = steps[steps["phase"] == "ramp"]["p50_ms"].iloc[0]
    turned = searched[searched["p50_ms"] > knee_factor * first]["offered"]
    calm = searched[searched["offered"] < turned.min()] if len(turned) else searched
    knee = float(calm["offered"].max()) if len(calm) else None
    missed = searched[~searched["slo_met"]]
    broke_at = float(missed["offered"].min()) if len(missed) else None
    bracket = (good, bad) if good is not None and bad is not None else None
    return StressReport(steps, good, knee, broke_at, slos, bracket, results)

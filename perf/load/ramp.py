"""Stress: raise the arrival rate until an SLO breaks, then narrow down the knee and repeat it.

Each step is its own open-model run (latency from the scheduled send time, every
scheduled request accounted), so a saturated server shows up as queueing latency,
timeouts and drops rather than as a generator that politely slows down. The ramp:

1. **warm up** (one unmeasured step at the first rate) so caches and pools are not cold;
2. **ramp** by ``factor`` until ``stop_after_breaks`` steps miss an SLO;
3. **refine** by bisection between the last good and the first bad rate until the
   bracket is within ``bracket`` (10%); a step *sustains* a rate when it met every SLO
   and delivered >= 95% of what was offered;
4. **confirm** the bottom of that bracket: repeat it ``repeats`` (>= 3) times. It is the
   **maximum sustainable rate** only if the majority of its repeats sustain it; otherwise
   it becomes the new top of the bracket and the next lower rate that passed once is
   tried, down to ``max_stepdowns`` times. One lucky step is seen as one.

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
        """The repeated runs of the max sustainable rate (empty when no rate was confirmed)."""
        if not len(self.steps) or self.max_sustainable is None:
            return self.steps.iloc[0:0]
        steps = self.steps
        return steps[(steps["phase"] == "repeat") & (steps["offered"] == self.max_sustainable)]

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
                     f"(median {reps['p99_ms'].median():,.1f}), sustained {int(reps['sustained'].sum())}/{len(reps)}")
        rejected = sorted({float(r) for r in self.steps.loc[self.steps["phase"] == "repeat", "offered"]}
                          - {self.max_sustainable}, reverse=True) if len(self.steps) else []
        if rejected:
            text += ("; not sustained in the majority of their repeats (stepped down): "
                     + ", ".join(f"{r:,.0f}" for r in rejected) + " req/s")
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
                 bracket: float = 0.10, max_refine: int = 6, repeats: int = 3, max_stepdowns: int = 3,
                 progress: bool = True) -> StressReport:
    """Warm up, ramp through ``rates`` until an SLO breaks, bisect to a ``bracket``, confirm by repeats.

    A rate is the max sustainable one only if the majority of its ``repeats`` (>= 3)
    runs sustain it; a rate that fails its repeats is stepped down from, at most
    ``max_stepdowns`` times. ``max_refine`` caps the bisection steps.
    """
    if not rates:
        raise ValueError("rates is empty: pass increasing rates, e.g. rate_steps(100)")
    if not 0 < bracket < 1:
        raise ValueError(f"bracket must be a fraction in (0, 1), e.g. 0.10, got {bracket!r}")
    if repeats < 3:
        raise ValueError(f"repeats must be >= 3 (a rate is sustainable when the majority of its repeats "
                         f"sustain it), got {repeats!r}")
    if max_refine < 0 or max_stepdowns < 0:
        raise ValueError(f"max_refine and max_stepdowns must be >= 0, got {max_refine!r} and {max_stepdowns!r}")
    parsed = [parse_slo(s) for s in slos]
    total = int(warmup) + len(rates) + max_refine + repeats
    with step_progress(total, "stress", enabled=progress) as bar:
        stepper = _Stepper(base_url, parsed, bar, step_seconds=step_seconds, scenario=scenario, driver=driver,
                           connections=connections, timeout=timeout)
        if warmup:
            await stepper.run(rates[0], "warm-up", record=False)
        good: float | None = None
        bad: float | None = None
        passed: list[float] = []
        breaks = 0
        for rate in rates:
            if await stepper.run(rate, "ramp"):
                passed.append(rate)
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
                passed.append(mid)
                good = mid
            else:
                bad = mid
        good, bad = await _confirm(stepper, passed, good, bad, repeats=repeats, max_stepdowns=max_stepdowns)
    steps = pd.DataFrame(stepper.rows)
    return _report(steps, [s.text for s in parsed], good, bad, knee_factor, stepper.results)


async def _confirm(stepper: _Stepper, passed: list[float], good: float | None, bad: float | None, *,
                   repeats: int, max_stepdowns: int) -> tuple[float | None, float | None]:
    """Repeat the best passing rate; on a failed majority step down to the next lower one."""
    candidates = sorted({r for r in passed if good is not None and r <= good}, reverse=True)
    needed = repeats // 2 + 1
    for rate in candidates[: max_stepdowns + 1]:
        wins = losses = 0
        # a rate that has lost its majority stops there; one that wins runs all its repeats (its spread)
        while wins + losses < repeats and losses < needed:
            if await stepper.run(rate, "repeat"):
                wins += 1
            else:
                losses += 1
        if wins >= needed:
            return rate, bad
        bad = rate if bad is None else min(bad, rate)
    return None, bad


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

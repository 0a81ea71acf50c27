"""Stress: raise the arrival rate in steps until an SLO breaks; report the knee and the max rate.

Each step is its own open-model run (latency from the scheduled send time), so a
saturated server shows up as queueing latency and late/dropped requests rather than
as a generator that politely slows down. The **maximum sustainable rate** is the
highest step that met every SLO and delivered >= 95% of the offered rate; the
**knee** is the last step before the median (p50) first rose past ``knee_factor`` x the
first step's: the median is what turns first when a queue forms, and it is far less
noisy than p99 over short steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from perf.load.analysis.slo import check_slos, parse_slo
from perf.load.drivers import Driver
from perf.load.models import OpenModel, run_load
from perf.load.results import LoadResult
from perf.load.scenarios import Scenario


@dataclass
class StressReport:
    """Per-step measurements and the rates derived from them."""

    steps: pd.DataFrame
    max_sustainable: float | None
    knee: float | None
    broke_at: float | None
    slos: list[str]
    results: list[LoadResult] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """One paragraph for a notebook or the CLI."""
        sustain = f"{self.max_sustainable:,.0f} req/s" if self.max_sustainable else "none of the steps"
        knee = f"{self.knee:,.0f} req/s" if self.knee else "n/a"
        broke = (f"SLO ({', '.join(self.slos)}) first missed at {self.broke_at:,.0f} req/s"
                 if self.broke_at else f"no step missed the SLO ({', '.join(self.slos)})")
        return f"max sustainable rate {sustain}; knee {knee}; {broke}"


def rate_steps(start: float, *, factor: float = 1.5, max_rate: float = 100_000.0,
               max_steps: int = 12) -> list[float]:
    """``start, start*factor, ...`` up to ``max_rate`` (at most ``max_steps`` rates)."""
    if start <= 0:
        raise ValueError(f"start must be > 0 req/s, got {start!r}")
    if factor <= 1:
        raise ValueError(f"factor must be > 1 (e.g. 1.5), got {factor!r}")
    rates, rate = [], float(start)
    while rate <= max_rate and len(rates) < max_steps:
        rates.append(round(rate, 1))
        rate *= factor
    return rates


async def stress(base_url: str, *, rates: Sequence[float], step_seconds: float = 3.0,
                 slos: Sequence[str] = ("p99<100ms", "errors<1%"), scenario: Scenario | None = None,
                 driver: str | Driver = "builtin", connections: int = 64, timeout: float = 5.0,
                 knee_factor: float = 2.0, stop_after_breaks: int = 1) -> StressReport:
    """Run ``rates`` in turn (each ``step_seconds``) until ``stop_after_breaks`` steps miss an SLO."""
    if not rates:
        raise ValueError("rates is empty: pass increasing rates, e.g. rate_steps(100)")
    parsed = [parse_slo(s) for s in slos]
    rows, results, breaks = [], [], 0
    for rate in rates:
        model = OpenModel(rate=rate, duration=step_seconds, connections=connections)
        result = await run_load(base_url, model=model, scenario=scenario, driver=driver, timeout=timeout)
        checks = check_slos(result, parsed)
        met = all(c.met for c in checks)
        p = result.overall().percentiles() if result.completed else {"p50": float("nan"), "p99": float("nan")}
        rows.append({"offered": rate, "achieved": result.throughput, "p50_ms": p["p50"] * 1e3,
                     "p99_ms": p["p99"] * 1e3, "error_rate": result.error_rate, "late": result.late,
                     "dropped": result.dropped, "slo_met": met,
                     "client_cpu": result.client_cpu_fraction})
        results.append(result)
        if not met:
            breaks += 1
            if breaks >= stop_after_breaks:
                break
    steps = pd.DataFrame(rows)
    ok = steps[steps["slo_met"] & (steps["achieved"] >= 0.95 * steps["offered"])]
    max_sustainable = float(ok["offered"].max()) if len(ok) else None
    turned = steps.index[steps["p50_ms"] > knee_factor * steps["p50_ms"].iloc[0]]
    calm = steps[steps.index < turned[0]] if len(turned) else steps
    knee = float(calm["offered"].max()) if len(calm) else None
    missed = steps[~steps["slo_met"]]
    broke_at = float(missed["offered"].iloc[0]) if len(missed) else None
    return StressReport(steps, max_sustainable, knee, broke_at, [s.text for s in parsed], results)

"""A concurrency sweep: the closed model at 1, 2, 4, ... users, one level after another.

Each level runs ``duration`` seconds after one warm-up (at the largest level, not
measured), and reports throughput, p50/p99 and errors. Two readings come out of it:

* **Little's law**, ``users = throughput x (latency + think time)``: in a closed model it
  holds by construction, so a level where it does not (ratio far from 1) lost requests
  somewhere (timeouts, a generator that could not keep its users busy);
* **where throughput stops growing**: the first level within ``growth`` (10%) of the
  peak throughput of the sweep (robust to one noisy level). Past that point more users
  only queue: latency grows with users while throughput stays flat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from perf.load.drivers import Driver
from perf.load.models import ClosedModel
from perf.load.progress import step_progress
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario

_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


def parse_users(text: str) -> list[int]:
    """``"16"`` -> [16]; ``"1,2,4,8"`` -> [1, 2, 4, 8]; ``"1..64"`` -> doubling [1, 2, 4, ..., 64]."""
    match = _RANGE.match(text)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if not 1 <= low <= high:
            raise ValueError(f"users range must be LOW..HIGH with 1 <= LOW <= HIGH, got {text!r}")
        levels, n = [], low
        while n < high:
            levels.append(n)
            n *= 2
        return [*levels, high]
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"users must look like 16, 1,2,4,8 or 1..64, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise ValueError(f"users must be >= 1 (e.g. 16, 1,2,4,8 or 1..64), got {text!r}")
    return levels


@dataclass
class SweepReport:
    """Per-level rows (``users``, ``rps``, ``p50_ms``, ``p99_ms``, ``mean_ms``, ``error_rate``, counts,
    ``little_users``, ``little_ratio``) and the level where throughput stopped growing."""

    levels: pd.DataFrame
    saturation: int | None
    think_time: float
    growth: float
    results: list[LoadResult] = field(default_factory=list, repr=False)

    @property
    def peak_rps(self) -> float:
        """The highest throughput of any level."""
        return float(self.levels["rps"].max()) if len(self.levels) else 0.0

    def describe(self) -> str:
        """One paragraph: the peak, where it stopped growing, Little's law."""
        if not len(self.levels):
            return "no levels ran"
        rows = self.levels.set_index("users")
        worst = float((rows["little_ratio"] - 1).abs().max())
        little = (f"Little's law holds within {worst:.0%} at every level" if worst <= 0.15 else
                  f"Little's law is off by up to {worst:.0%}: requests were lost (timeouts) or users sat idle")
        if self.saturation is None:
            grown = (f"throughput still grew at {int(rows.index[-1])} users in this sweep: the server did not "
                     "saturate within it")
        else:
            nxt = rows.index[rows.index > self.saturation]
            after = (f"; {int(nxt[-1])} users gave {rows.loc[nxt[-1], 'rps']:,.0f} req/s while p99 went "
                     f"{rows.loc[self.saturation, 'p99_ms']:,.1f} -> {rows.loc[nxt[-1], 'p99_ms']:,.1f} ms"
                     if len(nxt) else "")
            grown = (f"throughput stops growing at {self.saturation} users in this sweep, "
                     f"{rows.loc[self.saturation, 'rps']:,.0f} req/s (within {self.growth:.0%} of the peak){after}")
        # one run per level: a measurement of this sweep, not a finding about the server
        return (f"peak {self.peak_rps:,.0f} req/s; {grown}; {little} (one run per level: repeat the sweep "
                "before calling where it saturates)")


def _saturation(levels: pd.DataFrame, growth: float) -> int | None:
    rps = list(levels["rps"])
    if not rps:
        return None
    peak = max(rps)
    first = next(i for i, value in enumerate(rps) if value >= (1 - growth) * peak)
    if first == len(rps) - 1 and (first == 0 or rps[first] > (1 + growth) * max(rps[:first])):
        return None  # only the last level got there, by a clear step: still growing
    return int(levels["users"].iloc[first])


def _row(users: int, result: LoadResult, think_time: float) -> dict[str, float | int]:
    hist = result.overall()
    p = hist.percentiles() if hist.count else {"p50": float("nan"), "p99": float("nan")}
    mean = hist.mean if hist.count else float("nan")
    little = result.throughput * (mean + think_time)
    return {"users": users, "rps": result.throughput, "p50_ms": p["p50"] * 1e3, "p99_ms": p["p99"] * 1e3,
            "mean_ms": mean * 1e3, "error_rate": result.error_rate, "scheduled": result.scheduled,
            "completed": result.completed, "failed": result.failed, "timed_out": result.timed_out,
            "little_users": little, "little_ratio": little / users}


async def sweep(base_url: str, *, users: Sequence[int], duration: float = 3.0, think_time: float = 0.0,
                warmup: float = 1.0, scenario: Scenario | None = None, driver: str | Driver = "builtin",
                timeout: float = 10.0, growth: float = 0.10, progress: bool = True) -> SweepReport:
    """Run the closed model at each of ``users`` in turn (after a ``warmup`` at the largest level).

    ``growth``: a level must beat the best throughput before it by this fraction to count
    as still growing. ``progress`` shows the current level (terminal or notebook).
    """
    if not users or min(users) < 1:
        raise ValueError(f"users must be a non-empty list of levels >= 1, e.g. [1, 2, 4, 8], got {users!r}")
    if not 0 < growth < 1:
        raise ValueError(f"growth must be a fraction in (0, 1), e.g. 0.10, got {growth!r}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 seconds, got {warmup!r}")
    rows, results = [], []
    with step_progress(len(users) + (1 if warmup else 0), "sweep", enabled=progress) as bar:
        if warmup:
            bar.step(f"warm-up, {max(users)} users")
            await run_load(base_url, model=ClosedModel(users=max(users), duration=warmup), scenario=scenario,
                           driver=driver, timeout=timeout)
        for level in users:
            bar.step(f"{level} users")
            result = await run_load(base_url, model=ClosedModel(users=level, duration=duration,
                                                                think_time=think_time),
                                    scenario=scenario, driver=driver, timeout=timeout)
            rows.append(_row(level, result, think_time))
            results.append(result)
    levels = pd.DataFrame(rows)
    return SweepReport(levels, _saturation(levels, growth), think_time, growth, results)

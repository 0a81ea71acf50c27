"""The same scenario through the built-in engine and through Locust, side by side (notebook 07)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from perf.load.locust.runner import run_locust
from perf.load.models import ClosedModel
from perf.load.results import LoadResult
from perf.load.scale import run_processes
from perf.load.scenarios import Scenario


def _row(engine: str, workers: int, result: LoadResult) -> dict[str, object]:
    return {"engine": engine, "generators": workers, "rps": result.throughput,
            "cpu_us_per_request": result.client_cpu / result.completed * 1e6 if result.completed else float("nan"),
            "p99_ms": result.overall().percentile(99) * 1e3 if result.completed else float("nan"),
            "requests": result.completed}


def compare_engines(base_url: str, *, scenario: str | Scenario | None = None, users: int = 16,
                    duration: float = 5.0, locust_workers: Sequence[int] = (1, 2),
                    timeout: float = 10.0) -> pd.DataFrame:
    """One closed-model run on the built-in engine, then on Locust with each of ``locust_workers``.

    Each run is in its own processes, so this is safe from a notebook's running loop. Rows:
    engine, generators, req/s, generator CPU microseconds per request (workers only, not
    Locust's master), p99 ms and requests. Interleave repeats yourself for spread.
    """
    if not locust_workers or min(locust_workers) < 1:
        raise ValueError(f"locust_workers must list worker counts >= 1, got {locust_workers!r}")
    model = ClosedModel(users=users, duration=duration)
    rows = [_row("builtin", 1, run_processes(base_url, model=model, scenario=scenario, processes=1,
                                             timeout=timeout))]
    for workers in locust_workers:
        rows.append(_row("locust", workers, run_locust(base_url, model=model, scenario=scenario,
                                                       workers=workers, timeout=timeout)))
    return pd.DataFrame(rows).set_index(["engine", "generators"])

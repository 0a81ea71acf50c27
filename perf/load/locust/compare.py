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
                    duration: float = 5.0, locust_workers: Sequence[int] = (1, 2), rounds: int = 1,
                    timeout: float = 10.0) -> pd.DataFrame:
    """Closed-model runs on the built-in engine and on Locust with each of ``locust_workers``,
    ``rounds`` times, interleaved (the order reversed every other round).

    Each run is in its own processes, so this is safe from a notebook's running loop. One row
    per run: engine, generators, round, req/s, generator CPU microseconds per request (workers
    only, not Locust's master), p99 ms and requests. A comparison needs >= 3 rounds
    (:func:`perf.measure.compare`).
    """
    if not locust_workers or min(locust_workers) < 1:
        raise ValueError(f"locust_workers must list worker counts >= 1, got {locust_workers!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    model = ClosedModel(users=users, duration=duration)
    runs = [("builtin", 1), *(("locust", workers) for workers in locust_workers)]
    rows = []
    for round_ in range(rounds):
        for engine, workers in runs if round_ % 2 == 0 else runs[::-1]:
            if engine == "builtin":
                result = run_processes(base_url, model=model, scenario=scenario, processes=1, timeout=timeout)
            else:
                result = run_locust(base_url, model=model, scenario=scenario, workers=workers, timeout=timeout)
            rows.append({**_row(engine, workers, result), "round": round_})
    return pd.DataFrame(rows)

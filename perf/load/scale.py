"""Several generator processes: split the load, run it at the same time, merge the results.

One Python process tops out at one core. ``processes=N`` splits the model (users or
arrival rate) across N spawned processes, each on its own event loop (uvloop when
installed); their results come back HDR-encoded and are merged by adding histograms.
The scenario travels by name (``"package.module:NAME"``) or by pickle, so its path
generators must be module-level functions.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from perf.load.models import LoadModel
from perf.load.results import LoadResult, merge_results
from perf.load.runner import run_load
from perf.load.scenarios import Scenario, load_scenario

T = TypeVar("T")


def run_event_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _child(base_url: str, model: LoadModel, scenario: str | Scenario | None, driver: str,
           timeout: float, seed: int) -> dict[str, Any]:
    scn = load_scenario(scenario) if isinstance(scenario, str) else scenario
    result = run_event_loop(run_load(base_url, model=model, scenario=scn, driver=driver,
                                     timeout=timeout, seed=seed))
    return result.to_dict()


def run_processes(base_url: str, *, model: LoadModel, scenario: str | Scenario | None = None,
                  driver: str = "builtin", processes: int = 2, timeout: float = 10.0,
                  seed: int = 0) -> LoadResult:
    """Run ``model`` split over ``processes`` generator processes and return the merged result."""
    if not 1 <= processes <= 64:
        raise ValueError(f"processes must be 1..64, got {processes!r}")
    parts: list[LoadModel] = list(model.split(processes))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(parts), mp_context=context) as pool:
        futures = [pool.submit(_child, base_url, part, scenario, driver, timeout, seed + i)
                   for i, part in enumerate(parts)]
        dicts = [f.result() for f in futures]
    merged = merge_results(LoadResult.from_dict(d) for d in dicts)
    merged.model = model.describe() + f" × {len(parts)} processes"
    merged.check_accounting()
    return merged



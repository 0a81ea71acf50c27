"""Load testing: drivers, closed/open load models, HDR results, scenarios, sweeps, stress, SLO gates.

The front door::

    from perf.load import ClosedModel, OpenModel, Scenario, run_load, check_slos

    result = await run_load("http://127.0.0.1:8000", model=OpenModel(rate=200, duration=10))
    print(result.describe())          # every scheduled request accounted
    check_slos(result, ["p99<50ms", "errors<0.1%"])

Layout: running load (``models``, ``runner``, ``scenarios``, ``results``, ``drivers``, ``scale``),
experiments built on it (``sweep``: closed-model concurrency levels; ``stress``: an
open-model ramp to the knee), reading a run (:mod:`perf.load.analysis`: SLOs, time
breakdown, calibration, recommendations, profiler), charts (``plots``) and the
apparatus for the notebook (``demo_*``, ``product``). ``python -m perf load --help``
for the CLI.

The names load on first use, so a server process that imports one ``perf.load``
module (the demo server, a generator child) does not pay for pandas or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perf.load.analysis import (
        Calibration,
        ServerSampler,
        calibrate,
        check_slos,
        flag_client_bound,
        measurements_from,
        recommend,
        server_shares,
        time_breakdown,
    )
    from perf.load.concurrency import SweepReport, sweep
    from perf.load.models import ClosedModel, LoadModel, OpenModel
    from perf.load.plots import knee_chart, over_time_chart, spectrum_chart, sweep_chart
    from perf.load.ramp import StressReport, rate_steps, stress
    from perf.load.results import LoadResult, merge_results
    from perf.load.runner import run_load
    from perf.load.scale import run_processes
    from perf.load.scenarios import Endpoint, Scenario

# Modules are not named after the functions they export (sweep -> concurrency, stress -> ramp):
# importing a submodule sets it as an attribute of this package, which would shadow the
# lazily exported function of the same name.
_HOMES = {
    "Calibration": "perf.load.analysis",
    "ServerSampler": "perf.load.analysis",
    "calibrate": "perf.load.analysis",
    "check_slos": "perf.load.analysis",
    "flag_client_bound": "perf.load.analysis",
    "measurements_from": "perf.load.analysis",
    "recommend": "perf.load.analysis",
    "server_shares": "perf.load.analysis",
    "time_breakdown": "perf.load.analysis",
    "ClosedModel": "perf.load.models",
    "LoadModel": "perf.load.models",
    "OpenModel": "perf.load.models",
    "run_load": "perf.load.runner",
    "knee_chart": "perf.load.plots",
    "over_time_chart": "perf.load.plots",
    "spectrum_chart": "perf.load.plots",
    "sweep_chart": "perf.load.plots",
    "LoadResult": "perf.load.results",
    "merge_results": "perf.load.results",
    "run_processes": "perf.load.scale",
    "Endpoint": "perf.load.scenarios",
    "Scenario": "perf.load.scenarios",
    "StressReport": "perf.load.ramp",
    "rate_steps": "perf.load.ramp",
    "stress": "perf.load.ramp",
    "SweepReport": "perf.load.concurrency",
    "sweep": "perf.load.concurrency",
}
__all__ = [
    "Calibration", "ClosedModel", "Endpoint", "LoadModel", "LoadResult", "OpenModel", "Scenario",
    "ServerSampler", "StressReport", "SweepReport", "calibrate", "check_slos", "flag_client_bound",
    "knee_chart", "measurements_from", "merge_results", "over_time_chart", "rate_steps", "recommend",
    "run_load", "run_processes", "server_shares", "spectrum_chart", "stress", "sweep", "sweep_chart",
    "time_breakdown",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'perf.load' has no attribute {name!r}; the front door offers {__all__}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""Load testing: drivers, closed/open load models, HDR results, scenarios, sweeps, stress, SLO gates.

The front door::

    from perf.load import ClosedModel, OpenModel, Scenario, run_load, check_slos

    result = await run_load("http://127.0.0.1:8000", model=OpenModel(rate=200, duration=10))
    print(result.describe())          # every scheduled request accounted
    check_slos(result, ["p99<50ms", "errors<0.1%"])

Layout: running load (``models``, ``scenarios``, ``results``, ``drivers``, ``scale``),
experiments built on it (``sweep``: closed-model concurrency levels; ``stress``: an
open-model ramp to the knee), reading a run (:mod:`perf.load.analysis`: SLOs, time
breakdown, calibration, recommendations, profiler), charts (``plots``) and the
apparatus for the notebook (``demo_*``, ``product``). ``python -m perf load --help``
for the CLI.
"""

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
from perf.load.models import ClosedModel, LoadModel, OpenModel, run_load
from perf.load.plots import knee_chart, over_time_chart, spectrum_chart, sweep_chart
from perf.load.results import LoadResult, merge_results
from perf.load.scale import run_processes
from perf.load.scenarios import Endpoint, Scenario
from perf.load.stress import StressReport, rate_steps, stress
from perf.load.sweep import SweepReport, sweep

__all__ = ["Calibration", "ClosedModel", "Endpoint", "LoadModel", "LoadResult", "OpenModel", "Scenario",
           "ServerSampler", "StressReport", "calibrate", "check_slos", "flag_client_bound", "knee_chart",
           "measurements_from", "merge_results", "over_time_chart", "rate_steps", "recommend", "run_load",
           "run_processes", "server_shares", "spectrum_chart", "stress", "sweep", "sweep_chart", "SweepReport",
           "time_breakdown"]

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
apparatus for the notebook (``demo_*``, ``product``, ``locust.compare``): every name a
notebook uses is offered here. ``python -m perf load --help``
for the CLI.

The names load on first use, so a server process that imports one ``perf.load``
module (the demo server, a generator child) does not pay for pandas or matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.load.analysis import (
        Calibration,
        ProfiledServer,
        ServerSampler,
        calibrate,
        check_slos,
        compare_drivers,
        compare_paths,
        driver_ratios,
        flag_client_bound,
        flame_svg,
        measurements_from,
        mix_breakdown,
        recommend,
        server_shares,
        time_breakdown,
        top_frames,
        widest_frames,
    )
    from perf.load.concurrency import SweepReport, sweep
    from perf.load.demo_rss import rss_under_load
    from perf.load.demo_server import TestServer
    from perf.load.locust.compare import compare_engines
    from perf.load.models import ClosedModel, LoadModel, OpenModel
    from perf.load.plots import knee_chart, over_time_chart, spectrum_chart, sweep_chart
    from perf.load.product import api_measurements, product_scenario
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
    "ProfiledServer": "perf.load.analysis",
    "compare_drivers": "perf.load.analysis",
    "compare_paths": "perf.load.analysis",
    "driver_ratios": "perf.load.analysis",
    "flame_svg": "perf.load.analysis",
    "mix_breakdown": "perf.load.analysis",
    "top_frames": "perf.load.analysis",
    "widest_frames": "perf.load.analysis",
    "rss_under_load": "perf.load.demo_rss",
    "TestServer": "perf.load.demo_server",
    "compare_engines": "perf.load.locust.compare",
    "api_measurements": "perf.load.product",
    "product_scenario": "perf.load.product",
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
    "Calibration", "ClosedModel", "Endpoint", "LoadModel", "LoadResult", "OpenModel", "ProfiledServer",
    "Scenario", "ServerSampler", "StressReport", "SweepReport", "TestServer", "api_measurements", "calibrate",
    "check_slos", "compare_drivers", "compare_engines", "compare_paths", "driver_ratios", "flag_client_bound",
    "flame_svg", "knee_chart", "measurements_from", "merge_results", "mix_breakdown", "over_time_chart",
    "product_scenario", "rate_steps", "recommend", "rss_under_load", "run_load", "run_processes",
    "server_shares", "spectrum_chart", "stress", "sweep", "sweep_chart", "time_breakdown", "top_frames",
    "widest_frames",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)

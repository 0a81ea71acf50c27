"""Reading a load run: SLO gates, where the time went, is the generator the bottleneck, what to do.

* :mod:`~perf.load.analysis.slo`: ``"p99<50ms"`` strings checked against a result;
* :mod:`~perf.load.analysis.bottleneck`: ``Server-Timing`` breakdown, server CPU and ``/metrics`` sampling;
* :mod:`~perf.load.analysis.calibrate`: the generator's own ceiling and the one client-bound rule;
* :mod:`~perf.load.analysis.recommend`: rules over the measurements, each citing its number;
* :mod:`~perf.load.analysis.profiler`: a server under pyinstrument for one load window.
"""

from perf.load.analysis.bottleneck import ServerSampler, mix_breakdown, parse_metrics, server_shares, time_breakdown
from perf.load.analysis.calibrate import (
    Calibration,
    calibrate,
    compare_drivers,
    compare_paths,
    driver_ratios,
    flag_client_bound,
)
from perf.load.analysis.flame import flame_svg, widest_frames
from perf.load.analysis.profiler import ProfiledServer, top_frames
from perf.load.analysis.recommend import Measurements, Recommendation, measurements_from, recommend
from perf.load.analysis.slo import Slo, SloCheck, SloError, check_slos, parse_slo

__all__ = ["Calibration", "Measurements", "ProfiledServer", "Recommendation", "ServerSampler", "Slo", "SloCheck",
           "SloError", "calibrate", "check_slos", "compare_drivers", "compare_paths", "driver_ratios",
           "flag_client_bound", "flame_svg", "measurements_from", "mix_breakdown", "parse_metrics", "parse_slo",
           "recommend", "server_shares", "time_breakdown", "top_frames", "widest_frames"]

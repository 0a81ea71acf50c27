"""Apparatus that spans techniques: the product API driven by the load suite, side by side.

One floor above the techniques, the API and the load suite (it imports them, none imports it):

* :mod:`perf.lab.modes`: the API in each mode (baseline, each optimisation, all) under one load,
  interleaved rounds (``compare_modes``, ``run_api``).
* :mod:`perf.lab.workers`: one worker vs several under the same load (``compare_workers``).
* :mod:`perf.lab.server_metrics`: the server's own percentiles (``/metrics``) beside the load
  generator's, per route (``server_vs_client``, ``stepped_scrapes``).
* :mod:`perf.lab.source`: a function's code shown in a notebook (``show_source``).
* :mod:`perf.lab.plumbing`: a notebook's closing cell (``cleanup``: its Redis keys, its cores, its services).

The front door also offers the framework-cost apparatus of :mod:`perf.api.demo_framework`
(Nexios as shipped, its lean path and bare ASGI, called in process): measuring apparatus for
notebook 05, not part of the product's front door. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.api.demo_framework import BARE, DEFAULT, LEAN, framework_apps, framework_costs, framework_profile
    from perf.lab.modes import compare_modes, run_api
    from perf.lab.plumbing import cleanup
    from perf.lab.server_metrics import server_vs_client, stepped_scrapes
    from perf.lab.source import show_source
    from perf.lab.workers import compare_workers, run_app_object_workers

_HOMES = {
    "BARE": "perf.api.demo_framework",
    "DEFAULT": "perf.api.demo_framework",
    "LEAN": "perf.api.demo_framework",
    "framework_apps": "perf.api.demo_framework",
    "framework_costs": "perf.api.demo_framework",
    "framework_profile": "perf.api.demo_framework",
    "compare_modes": "perf.lab.modes",
    "run_api": "perf.lab.modes",
    "cleanup": "perf.lab.plumbing",
    "server_vs_client": "perf.lab.server_metrics",
    "stepped_scrapes": "perf.lab.server_metrics",
    "show_source": "perf.lab.source",
    "compare_workers": "perf.lab.workers",
    "run_app_object_workers": "perf.lab.workers",
}
__all__ = [
    "BARE", "DEFAULT", "LEAN", "cleanup", "compare_modes", "compare_workers", "framework_apps", "framework_costs",
    "framework_profile", "run_api", "run_app_object_workers", "server_vs_client", "show_source", "stepped_scrapes",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)

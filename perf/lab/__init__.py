"""Apparatus that spans techniques: the product API driven by the load suite, side by side.

One floor above the techniques, the API and the load suite (it imports them, none imports it):

* :mod:`perf.lab.modes`: the API in each mode (baseline, each optimisation, all) under one load,
  interleaved rounds (``compare_modes``, ``run_api``).
* :mod:`perf.lab.workers`: one worker vs several under the same load (``compare_workers``).
* :mod:`perf.lab.server_metrics`: the server's own percentiles (``/metrics``) beside the load
  generator's, per route (``server_vs_client``, ``stepped_scrapes``).
"""

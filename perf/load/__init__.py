"""Load testing: drivers, closed/open load models, HDR results, scenarios, stress, SLO gates.

Start with :func:`perf.load.models.run_load`; ``python -m perf load --help`` for the CLI.
"""

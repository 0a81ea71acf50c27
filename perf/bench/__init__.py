"""Benchmarks: ``python -m perf.bench.NAME`` prints figures measured side by side in one run.

Each module is runnable and prints a table plus the ratios its issue names; none of
them asserts (tests assert behaviour, benchmarks print numbers).
"""

"""The full suite on pytest-xdist workers: which tests may run beside which.

``python3 tasks.py test`` runs the suite on three workers (``-n 3``). xdist's own schedulers either
spread a file's tests over several workers (each worker would then start the file's module-scoped
API server, and a notebook's cells, which share one kernel, would be torn apart) or let a conftest
marker decide, which only works when that conftest is loaded. :class:`SuiteScheduling` decides
from the test id alone, in the controller:

* a test file is one unit of work: it runs whole, in its order, on one worker;
* the notebooks are one unit, :data:`NOTEBOOKS`: each runs whole, top to bottom, in its own
  kernel, one notebook after another;
* the files that measure throughput or latency on pinned cores (:data:`MEASURING_FILES`) are one
  unit, :data:`MEASUREMENTS`: they run one after another, never beside each other.

Units are handed out largest first (xdist's ``loadscope`` order), so the two long units start at
at once on two workers, and the test files fill in beside and behind them. A notebook may thus run beside a
measuring test file: the test run checks that the code runs and that each claim follows from its
own run's figures (the audit), not the figures themselves; nothing in it asserts a timing below the
5x rule. Run the workbook (``python3 tasks.py workbook``) for figures to read.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

NOTEBOOKS = "notebooks"
MEASUREMENTS = "measurements"

#: Test files that measure throughput or latency (load generators, benchmarks, the KEYS walk):
#: like the notebooks, they run in turn on one worker.
MEASURING_FILES = ("test_load_", "test_bench_", "test_measure", "test_cache_demo_keys", "test_api_demo_workers",
                   "test_pool_demo_race", "test_services_start_together")


def work_unit(nodeid: str) -> str:
    """The unit of work ``nodeid`` belongs to: :data:`NOTEBOOKS`, :data:`MEASUREMENTS` or its file's path."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return NOTEBOOKS
    if path.rsplit("/", 1)[-1].startswith(MEASURING_FILES):
        return MEASUREMENTS
    return path


class SuiteScheduling(LoadScopeScheduling):
    """xdist's ``loadscope`` with :func:`work_unit` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)

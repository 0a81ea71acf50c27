"""Runs: every workbook, notebook or benchmark run keeps its numbers and charts in a folder.

* :func:`record`: save a frame (tidy CSV + units) into this process's run, one call.
* :func:`current_run` / :func:`start_run` / :func:`open_run`: the run folders themselves.
* :func:`compare_runs` / :func:`compare_with_previous`: B/A per figure, judged against the noise.
* :func:`replayable`: a measuring step that, with ``PERF_REPLAY=<run id>``, returns that run's result.
* :func:`audit`: the claims ledger (``claims.json``): every verdict a notebook stated, judged again.

Charts drawn with :mod:`perf.charts` are recorded, with the frame they show, into the run
already open (:func:`active_run`: this process's, or the workbook's); drawing never starts
one. :func:`perf.charts.record_chart` records explicitly, starting it if needed.
"""

from perf.runs.claims import Audit, audit, format_audit, install
from perf.runs.compare import RunComparison, compare_runs, compare_with_previous, format_comparison, judge
from perf.runs.replay import replay_note, replayable, replayable_sync
from perf.runs.store import (
    Run,
    active_run,
    current_run,
    list_run_dirs,
    open_run,
    record,
    runs_dir,
    set_current_run,
    start_run,
)

install()  # every verdict a notebook publishes goes into its run's claims.json

__all__ = [
    "Audit",
    "Run",
    "active_run",
    "audit",
    "format_audit",
    "RunComparison",
    "compare_runs",
    "compare_with_previous",
    "current_run",
    "format_comparison",
    "judge",
    "list_run_dirs",
    "open_run",
    "record",
    "replay_note",
    "replayable",
    "replayable_sync",
    "runs_dir",
    "set_current_run",
    "start_run",
]

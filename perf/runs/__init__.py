"""Runs: every workbook, notebook or benchmark run keeps its numbers and charts in a folder.

* :func:`record`: save a frame (tidy CSV + units) into this process's run, one call.
* :func:`current_run` / :func:`start_run` / :func:`open_run`: the run folders themselves.
* :func:`compare_runs` / :func:`compare_with_previous`: B/A per figure, judged against the noise.
* :func:`replayable`: a measuring step that, with ``PERF_REPLAY=<run id>``, returns that run's result.

Charts drawn with :mod:`perf.charts` are saved into the current run automatically,
together with the frame they show.
"""

from perf.runs.compare import RunComparison, compare_runs, compare_with_previous, format_comparison, judge
from perf.runs.replay import replay_note, replayable, replayable_sync
from perf.runs.store import Run, current_run, list_run_dirs, open_run, record, runs_dir, set_current_run, start_run

__all__ = [
    "Run",
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

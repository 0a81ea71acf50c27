"""A round in which one mode got no response is left out of every comparison of the modes."""

from __future__ import annotations

import math

from perf.lab.modes import ModeComparison, ModeRun
from perf.load.results import LoadResult


def _run(mode: str, rnd: int, responses: int) -> ModeRun:
    result = LoadResult(duration=0.5)
    if responses:
        result.status_counts[200] = responses
    return ModeRun(mode, rnd, result, server_cpu=0.9)


def test_a_round_where_a_mode_answered_nothing_is_left_out_of_the_comparison() -> None:
    runs = [_run("baseline", r, 500) for r in range(3)] + [_run("all", 0, 800), _run("all", 1, 0), _run("all", 2, 900)]
    modes = ModeComparison(runs, baseline="baseline")
    assert modes.unanswered() == [(1, "all")]
    assert list(modes.rounds("rps").index) == [0, 2]  # both modes, rounds 0 and 2 only
    assert modes.table().loc["all", "rps"] == 1700.0 and math.isclose(modes.table().loc["all", "speedup"], 1.7)
    assert set(modes.speedups()["round"]) == {0, 2}
    assert len(modes.frame()) == 6  # the data keeps every run, the stalled one included

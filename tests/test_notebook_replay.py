"""Every measuring step of a replaying notebook goes through ``replayable`` (a static check of its source).

With ``PERF_REPLAY=<run id>`` a notebook presents a recorded run (:mod:`perf.runs.replay`); a
cell that starts a server or runs load outside ``replayable`` would measure anyway, slowly,
and its figures would not be the run the note names. Reading the sources is enough to catch
that, so this runs in milliseconds: a use of a measuring name must sit inside the lambda or
the function handed to ``replayable``/``replayable_sync`` in the same cell.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
# notebooks whose measuring steps replay; add one once it does
REPLAYING = ["05_api", "06_background", "07_load", "09_framework"]

# What starts a server, runs load or times something in the notebooks: a new apparatus joins this list.
MEASURING = frozenset({
    "ApiServer", "TestServer", "start_together", "run_load", "run_processes", "run_locust", "sweep", "stress",
    "calibrate", "compare_drivers", "compare_engines", "compare_paths", "compare_queues", "full_queue_requests",
    "shutdown_drain", "crash_experiment", "server_vs_client", "stepped_scrapes",
    "compare_modes", "compare_workers", "ProfiledServer", "framework_apps", "framework_costs", "framework_profile",
    "rss_under_load", "run_app_object_workers",
})
WRAPPERS = frozenset({"replayable", "replayable_sync"})


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _parse(source: str) -> ast.Module:
    tree = compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    return tree


def unwrapped(source: str) -> list[str]:
    """The measuring names ``source`` (one cell) uses outside a step handed to ``replayable``."""
    tree = _parse(source)
    handed: set[str] = set()  # functions passed by name
    wrapped: list[ast.AST] = []  # their bodies and the lambdas passed inline
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in WRAPPERS and len(node.args) >= 2:
            step = node.args[1]
            if isinstance(step, ast.Lambda):
                wrapped.append(step)
            elif isinstance(step, ast.Name):
                handed.add(step.id)
    wrapped += [node for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in handed]
    inside = {id(n) for w in wrapped for n in ast.walk(w)}
    return [f"{_name(n)} (line {n.lineno})" for n in ast.walk(tree)
            if isinstance(n, ast.Name | ast.Attribute) and _name(n) in MEASURING and id(n) not in inside]


def _code_cells(notebook: str) -> list[str]:
    nb = jupytext.read(ROOT / "notebooks" / "_src" / f"{notebook}.py", fmt="py:percent")
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("notebook", REPLAYING)
def test_every_measuring_step_replays(notebook: str) -> None:
    cells = _code_cells(notebook)
    found = {i: unwrapped(source) for i, source in enumerate(cells)}
    missing = {i: names for i, names in found.items() if names}
    assert not missing, (f"{notebook}: code cells {missing} measure outside replayable; wrap the step: "
                         "`result = await replayable(\"<name>\", lambda: ...)` (servers started inside it)")
    measuring = [source for source in cells if any(_name(n) in MEASURING for n in ast.walk(_parse(source))
                                                   if isinstance(n, ast.Name | ast.Attribute))]
    assert measuring, f"{notebook} uses no measuring name: is MEASURING out of date?"


@pytest.mark.parametrize("notebook", REPLAYING)
def test_step_names_are_unique_and_the_note_is_shown(notebook: str) -> None:
    """A second step under the same name would overwrite the first's saved result."""
    cells = _code_cells(notebook)
    names = Counter(node.args[0].value for source in cells for node in ast.walk(_parse(source))
                    if isinstance(node, ast.Call) and _name(node.func) in WRAPPERS
                    and node.args and isinstance(node.args[0], ast.Constant))
    assert names and not [n for n, count in names.items() if count > 1], f"{notebook}: step names {names}"
    assert any("replay_note()" in source for source in cells), f"{notebook} does not show the replay note"


def test_the_check_sees_a_step_that_measures_outside_replayable() -> None:
    live = "with ApiServer(settings) as server:\n    swept = await sweep(server.url, users=[1, 2])\n"
    assert unwrapped(live) == ["ApiServer (line 1)", "sweep (line 2)"]
    inline = "report = await replayable('stress', lambda: stress(url, rates=[10]))\n"
    by_name = ("async def measure():\n    with TestServer() as bare:\n        return await compare_drivers(bare.url)\n"
               "\n\ndrivers = await replayable('drivers', measure)\n")
    assert unwrapped(inline) == [] and unwrapped(by_name) == []
    other = "async def measure():\n    return await run_load(url)\n\n\nresult = await replayable('x', other)\n"
    assert unwrapped(other) == ["run_load (line 2)"]
    passed = "seed = await asyncio.to_thread(crash_experiment, url)\n"  # passed, not called: still measuring
    assert unwrapped(passed) == ["crash_experiment (line 1)"]

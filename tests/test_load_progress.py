"""Progress of sweeps and ramps: shown while they run, nothing left behind in a notebook's output."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from perf.load.progress import step_progress


def test_terminal_bar_goes_to_stderr_and_is_removed(capsys: pytest.CaptureFixture[str]) -> None:
    with step_progress(3, "sweep") as bar:
        for label in ("1 users", "2 users", "4 users"):
            bar.step(label)
    captured = capsys.readouterr()
    assert "sweep" in captured.err and "4 users" in captured.err
    assert captured.out == ""
    with step_progress(3, "quiet", enabled=False) as bar:
        bar.step("x")
    assert capsys.readouterr().err == ""


def test_in_a_notebook_the_bar_leaves_no_output() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from perf.load.demo_server import TestServer\n"
        "from perf.load import sweep\n"
        "from perf.load.scenarios import Scenario\n"
        "with TestServer() as server:\n"
        "    report = await sweep(server.url, users=[1, 2], duration=0.3, warmup=0.2,\n"
        "                         scenario=Scenario.single('/delay/5'))\n"
        "print(list(report.levels['users']))")]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    streams = [o for o in outputs if o.output_type == "stream"]
    assert [o.text for o in streams] == ["[1, 2]\n"]  # no tqdm text on stderr
    for output in outputs:
        if output.output_type == "display_data":
            assert all(value == "" for value in output.data.values()), output

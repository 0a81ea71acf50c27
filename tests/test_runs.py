"""Run folders: what a notebook run and a benchmark run leave behind, isolation of test runs, compare."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from perf.config import PROJECT_ROOT, get_settings  # noqa: E402
from perf.measure import summarize  # noqa: E402
from perf.runs import compare_runs, compare_with_previous, format_comparison, judge, open_run, start_run  # noqa: E402
from perf.runs.cli import main as runs_main  # noqa: E402
from perf.runs.store import RUN_ID_ENV, RUN_SOURCE_ENV, list_run_dirs, set_current_run  # noqa: E402
from perf.workbook import execute_notebook  # noqa: E402

RUN_FILES = {"id", "kind", "started", "ended", "profile", "git", "machine", "services", "notebooks", "benchmarks"}


def _samples(center: float, *, spread: float, n: int = 15, seed: int = 0) -> pd.DataFrame:
    """``n`` repeats spread evenly over ``center`` ± ``spread`` (shuffled by ``seed``): median = center."""
    values = center * (1 + np.random.default_rng(seed).permutation(np.linspace(-spread, spread, n)))
    return pd.DataFrame({"variant": ["query"] * n, "seconds": values})


def test_a_test_session_writes_runs_to_a_temporary_build_dir() -> None:
    user_runs = PROJECT_ROOT / "build" / "runs"
    before = sorted(p.name for p in user_runs.iterdir()) if user_runs.is_dir() else []
    build = get_settings().build_dir
    assert not build.is_relative_to(PROJECT_ROOT), f"tests must not write into the project: {build}"
    run = start_run("isolation", kind="session")
    run.record("frame", pd.DataFrame({"a": [1]}))
    assert run.path.is_relative_to(build)
    after = sorted(p.name for p in user_runs.iterdir()) if user_runs.is_dir() else []
    assert after == before


def test_notebook_run_folder_holds_run_json_frames_schema_and_charts(tmp_path: Path) -> None:
    runs = get_settings().build_dir / "runs"
    run = start_run("workbook", kind="workbook")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "import matplotlib; matplotlib.use('Agg')\n"
        "import pandas as pd\nfrom perf import charts, runs\nfrom perf.measure import summarize",
        "s = summarize(pd.DataFrame({'variant': ['a'] * 5 + ['b'] * 5, 'seconds': [0.001] * 5 + [0.002] * 5}))\n"
        "charts.bar_with_spread(s, title='A vs B', unit='ms')",
        "runs.record('raw timings', pd.DataFrame({'variant': ['a'], 'seconds': [0.001]}), unit='s')",
        "print(runs.compare_with_previous('07_demo'))",
    )]
    path = tmp_path / "07_demo.ipynb"
    nbformat.write(nb, path)
    import os

    env = {**os.environ, RUN_ID_ENV: run.id, RUN_SOURCE_ENV: "07_demo"}
    result = execute_notebook(path, tmp_path / "out", env=env)
    assert result.ok, result.error
    meta = json.loads((run.path / "run.json").read_text())
    assert RUN_FILES <= set(meta) and meta["notebooks"] == ["07_demo"] and meta["git"]["commit"]
    folder = runs / run.id / "07_demo"
    assert sorted(p.name for p in folder.iterdir()) == ["a-vs-b.csv", "a-vs-b.png", "frames.json", "raw-timings.csv"]
    schema = json.loads((folder / "frames.json").read_text())
    assert schema["a-vs-b"]["kind"] == "summary" and schema["a-vs-b"]["units"]["median"] == "s"
    assert list(pd.read_csv(folder / "a-vs-b.csv")["variant"]) == ["a", "b"]
    executed = nbformat.read(result.executed, as_version=4)
    assert "first recorded run of 07_demo" in executed.cells[-1].outputs[0]["text"]


def test_benchmark_run_records_into_its_own_folder() -> None:
    run = start_run("perf.bench.demo", kind="benchmark", source="perf.bench.demo")
    set_current_run(run)
    try:
        from perf.runs import record

        record("stampede", summarize(_samples(0.01, spread=0.05)), unit="s")
    finally:
        set_current_run(None)
    meta = run.meta()
    assert meta["kind"] == "benchmark" and meta["benchmarks"] == ["perf.bench.demo"] and meta["ended"]
    assert (run.path / "perf.bench.demo" / "stampede.csv").exists()
    assert open_run(run.id).meta()["id"] == run.id


def test_compare_flags_a_2x_change_and_not_3_percent_inside_the_noise(capsys: pytest.CaptureFixture[str]) -> None:
    a = start_run("synthetic-a", kind="benchmark", source="perf.bench.syn")
    b = start_run("synthetic-b", kind="benchmark", source="perf.bench.syn")
    a.record("doubled", summarize(_samples(0.010, spread=0.1, seed=1)), unit="s")
    b.record("doubled", summarize(_samples(0.020, spread=0.1, seed=2)), unit="s")
    a.record("steady", summarize(_samples(0.010, spread=0.1, seed=3)), unit="s")
    b.record("steady", summarize(_samples(0.0103, spread=0.1, seed=4)), unit="s")
    table = compare_runs(a, b).set_index("frame")
    assert table.loc["doubled", "verdict"] == "slower" and table.loc["doubled", "ratio"] == pytest.approx(2, rel=0.15)
    assert table.loc["steady", "verdict"] == "within noise"
    assert table.loc["steady", "noise_a_pct"] > 3
    assert runs_main(["compare", a.id, b.id]) == 0
    out = capsys.readouterr().out
    doubled = next(line for line in out.splitlines() if line.startswith("doubled"))
    steady = next(line for line in out.splitlines() if line.startswith("steady"))
    assert "slower  <<" in doubled and "<<" not in steady and "±" in steady
    assert runs_main([]) == 0 and a.id in capsys.readouterr().out


def test_compare_with_previous_finds_the_last_run_of_that_notebook() -> None:
    first = start_run("nb", kind="notebook", source="09_prev")
    first.record("t", summarize(_samples(0.01, spread=0.1)), unit="s")
    start_run("other", kind="notebook", source="10_other").record("t", pd.DataFrame({"a": [1]}))
    second = start_run("nb", kind="notebook", source="09_prev")
    second.record("t", summarize(_samples(0.01, spread=0.1, seed=5)), unit="s")
    comparison = compare_with_previous("09_prev", run=second)
    assert comparison.previous == first.id and len(comparison.table) == 1
    assert "B/A" in comparison.text()


def test_judge_needs_repeats_and_validates() -> None:
    nan = float("nan")
    assert judge(1.0, nan, nan, 2.0, nan, nan) == "no repeats"
    assert judge(10.0, 9, 11, 5.0, 4.5, 5.5, unit="rows/s") == "lower"
    assert judge(1.0, 0.9, 1.1, 0.5, 0.45, 0.55, unit="s") == "faster"
    with pytest.raises(ValueError, match="min_change must be >= 0"):
        judge(1, 1, 1, 1, 1, 1, min_change=-1)
    assert "no figure" in format_comparison(pd.DataFrame(), "a", "b")


def test_unknown_run_names_the_folder_and_the_fix() -> None:
    with pytest.raises(FileNotFoundError, match="tasks.py runs"):
        open_run("no-such-run")
    assert runs_main(["compare", "no-such-run", "latest"]) == 2
    assert list_run_dirs(Path("/nonexistent")) == []


def test_rows_that_share_their_keys_pair_row_for_row() -> None:
    """A line chart's frame repeats its series' name on every point: a run against an identical run is 1.0x."""
    frame = pd.DataFrame({"series": ["a"] * 3 + ["b"] * 3, "t": [0.5, 1.0, 1.5] * 2,
                          "rps": [100.0, 200.0, 400.0, 10.0, 20.0, 40.0]})
    a = start_run("lines-a", kind="benchmark", source="perf.bench.lines")
    b = start_run("lines-b", kind="benchmark", source="perf.bench.lines")
    a.record("over_time", frame)
    b.record("over_time", frame)
    table = compare_runs(a, b)
    rows = table[table["frame"] == "over_time"]
    assert len(rows) == 2 * len(frame) and (rows["ratio"] == 1.0).all()

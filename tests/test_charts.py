import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from perf import charts  # noqa: E402
from perf.measure import LatencyHistogram, summarize  # noqa: E402
from perf.runs import start_run  # noqa: E402
from perf.runs.store import set_current_run  # noqa: E402

INFO = {"cpus": 2, "cpus_usable": 1, "python": "3.11.7", "profile": "quick"}


@pytest.fixture
def run():  # type: ignore[no-untyped-def]
    run = start_run("charts", kind="session", source="charts")
    set_current_run(run)
    yield run
    set_current_run(None)
    plt.close("all")


def test_charts_are_saved_into_the_run_with_their_frames(run) -> None:  # type: ignore[no-untyped-def]
    samples = pd.DataFrame({"variant": ["a", "a", "b", "b"], "seconds": [0.001, 0.002, 0.010, 0.012]})
    fig = charts.bar_with_spread(summarize(samples), title="Bars: A vs B", info=INFO)
    assert fig.axes[0].get_xlabel().startswith("time (ms")
    rates = charts.bar_with_spread(summarize(samples), title="Rates", unit="", value_label="rows/s", info=INFO)
    assert rates.axes[0].get_xlabel() == "rows/s (median; no whiskers: < 3 repeats)"
    frame = pd.DataFrame({"n": [1, 2, 3] * 2, "ms": [1, 2, 3, 2, 4, 6], "kind": ["x"] * 3 + ["y"] * 3})
    charts.line_over(frame, x="n", y="ms", hue="kind", title="Line", info=INFO)
    charts.latency_percentiles({"h": LatencyHistogram.from_samples([0.001 * i for i in range(1, 200)])},
                               title="Latency", info=INFO)
    names = sorted(p.name for p in (run.path / "charts").iterdir())
    assert names == ["bars-a-vs-b.csv", "bars-a-vs-b.png", "frames.json", "latency.csv", "latency.png",
                     "line.csv", "line.png", "rates.csv", "rates.png"]


def test_bar_labels_are_plain_numbers_and_the_baseline_comes_first(run) -> None:  # type: ignore[no-untyped-def]
    samples = pd.DataFrame({"variant": ["fast"] * 3 + ["baseline"] * 3,
                            "seconds": [0.0025, 0.0026, 0.0027, 2.5, 2.58, 2.6]})
    fig = charts.bar_with_spread(summarize(samples), title="Plain", unit="µs", baseline="baseline", info=INFO)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["baseline", "fast"]
    labels = [t.get_text().strip() for t in ax.texts]
    assert labels == ["2,580,000 µs", "2,600 µs"] and not any("e+" in t for t in labels)
    assert charts.plain(2580.4) == "2,580" and charts.plain(0.01234) == "0.0123"


def test_log_axes_have_plain_ticks_at_the_data_and_generic_legends_no_title(run) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"concurrency": [1, 5, 10, 50] * 2, "value": [1, 2, 3, 4, 2, 3, 4, 5],
                          "variable": ["ok"] * 4 + ["errors"] * 4})
    fig = charts.line_over(frame, x="concurrency", y="value", hue="variable", logx=True, title="Log", info=INFO)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "10", "50"]
    assert ax.get_legend().get_title().get_text() == ""
    titled = charts.line_over(frame, x="concurrency", y="value", hue="variable", legend_title="requests",
                              title="Log 2", info=INFO)
    assert titled.axes[0].get_legend().get_title().get_text() == "requests"


def test_percentile_axis_stops_where_the_sample_supports_and_footer_is_the_runs(run) -> None:  # type: ignore[no-untyped-def]
    small = LatencyHistogram.from_samples([0.001 * i for i in range(1, 150)])  # n=149: up to ~p99
    fig = charts.latency_percentiles({"small": small}, title="Small", info=INFO)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0%", "50%", "90%", "99%"]
    assert ax.get_xlim()[1] == pytest.approx(149)
    footers = {fig.texts[-1].get_text()}
    pinned = charts.bar_with_spread(summarize(pd.DataFrame({"variant": ["a"] * 3, "seconds": [1.0] * 3})),
                                    title="Pinned", info={**INFO, "cpus_usable": 2})
    footers.add(pinned.texts[-1].get_text())
    assert len(footers) == 1 and footers.pop().startswith(f"{run.meta()['machine']['cpus']} CPU")


def test_chart_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        charts.bar_with_spread(summarize(pd.DataFrame({"variant": ["a"], "seconds": [1.0]})),
                               title="t", unit="minutes", save_as=False)
    with pytest.raises(KeyError, match="no column 'nope'"):
        charts.line_over(pd.DataFrame({"a": [1]}), x="a", y="nope", title="t", save_as=False)
    with pytest.raises(KeyError, match="baseline 'zzz' is not a row"):
        charts.bar_with_spread(summarize(pd.DataFrame({"variant": ["a"], "seconds": [1.0]})),
                               title="t", baseline="zzz", save_as=False)


def test_readable_at_a_glance_units_and_scales(run) -> None:  # type: ignore[no-untyped-def]
    samples = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "seconds": [1e-5, 2e-5, 3e-5, 2e-3, 3e-3, 4e-3]})
    bars = charts.bar_with_spread(summarize(samples), title="Micro", unit="us", log=True, info=INFO)
    assert bars.axes[0].get_xlabel().startswith("time (µs, median")
    labels = [t.get_text() for t in bars.axes[0].get_xticklabels() if t.get_text()]
    assert len(labels) <= 4, labels  # over ~2.5 decades: one label a decade, never 1-2-5 crowding
    fast = LatencyHistogram.from_samples([0.001] * 500)
    slow = LatencyHistogram.from_samples([0.2] * 500)
    apart = charts.latency_percentiles({"fast": fast, "slow": slow}, title="Apart", info=INFO)
    assert apart.axes[0].get_yscale() == "log" and "log scale" in apart.axes[0].get_ylabel()
    close = charts.latency_percentiles({"a": fast, "b": LatencyHistogram.from_samples([0.002] * 500)},
                                       title="Close", info=INFO)
    assert close.axes[0].get_yscale() == "linear"


def test_drawing_records_only_into_an_open_run_and_record_chart_starts_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No run open: drawing starts none (no folder, no git, no machine facts); record_chart is the explicit call."""
    import perf.runs.store as store

    set_current_run(None)
    monkeypatch.delenv(store.RUN_ID_ENV, raising=False)
    monkeypatch.setenv(store.RUN_SOURCE_ENV, "charts-explicit")
    before = store.list_run_dirs()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("drawing a chart started a run")

    with monkeypatch.context() as patch:
        patch.setattr(store, "git_state", forbidden)
        patch.setattr(store, "start_run", forbidden)
        samples = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "seconds": [0.001] * 3 + [0.002] * 3})
        fig = charts.bar_with_spread(summarize(samples), title="Unrecorded", save_as="kept as", info=INFO)
        assert fig.texts[-1].get_text().endswith("quick")  # the footer still names the machine
    try:
        assert store.list_run_dirs() == before and store.active_run() is None
        path = charts.record_chart(fig)
        run = store.active_run()
        assert run is not None and path.parent == run.path / "charts-explicit"
        assert sorted(p.name for p in path.parent.iterdir()) == ["frames.json", "kept-as.csv", "kept-as.png"]
        line = charts.line_over(pd.DataFrame({"n": [1, 2], "ms": [1, 2]}), x="n", y="ms", title="Drawn after")
        assert charts.record_if_run_open(line, "again") is not None  # a run is open now: drawing recorded too
        assert (path.parent / "drawn-after.png").exists() and (path.parent / "again.png").exists()
        with pytest.raises(ValueError, match="no title"):
            charts.record_chart(plt.figure())
    finally:
        set_current_run(None)
        plt.close("all")


def test_a_run_handed_over_by_a_runner_is_joined_by_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    import perf.runs.store as store

    run = start_run("workbook", kind="workbook")
    set_current_run(None)
    monkeypatch.setenv(store.RUN_ID_ENV, run.id)
    monkeypatch.setenv(store.RUN_SOURCE_ENV, "07_handed")
    try:
        charts.line_over(pd.DataFrame({"n": [1, 2], "ms": [1, 2]}), x="n", y="ms", title="Joined", info=INFO)
        assert (run.path / "07_handed" / "joined.png").exists() and run.meta()["notebooks"] == ["07_handed"]
    finally:
        set_current_run(None)
        plt.close("all")

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from perf import charts  # noqa: E402
from perf.measure import LatencyHistogram, summarize  # noqa: E402

INFO = {"cpus": 2, "python": "3.11.7", "profile": "quick"}


def test_charts_render_and_save(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(charts, "get_settings", lambda: type("S", (), {"build_dir": tmp_path})())
    samples = pd.DataFrame({"variant": ["a", "a", "b", "b"], "seconds": [0.001, 0.002, 0.010, 0.012]})
    fig = charts.bar_with_spread(summarize(samples), title="Bars: A vs B", info=INFO)
    assert fig.axes[0].get_xlabel().startswith("time (ms")
    rates = charts.bar_with_spread(summarize(samples), title="Rates", unit="", value_label="rows/s", info=INFO)
    assert rates.axes[0].get_xlabel() == "rows/s (median; whiskers IQR)"
    frame = pd.DataFrame({"n": [1, 2, 3] * 2, "ms": [1, 2, 3, 2, 4, 6], "kind": ["x"] * 3 + ["y"] * 3})
    charts.line_over(frame, x="n", y="ms", hue="kind", title="Line", info=INFO)
    charts.latency_percentiles({"h": LatencyHistogram.from_samples([0.001 * i for i in range(1, 200)])},
                               title="Latency", info=INFO)
    plt.close("all")
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == [
        "bars-a-vs-b.png", "latency.png", "line.png", "rates.png"]


def test_chart_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        charts.bar_with_spread(summarize(pd.DataFrame({"variant": ["a"], "seconds": [1.0]})),
                               title="t", unit="minutes", save_as=False)
    with pytest.raises(KeyError, match="no column 'nope'"):
        charts.line_over(pd.DataFrame({"a": [1]}), x="a", y="nope", title="t", save_as=False)

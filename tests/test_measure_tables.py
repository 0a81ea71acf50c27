"""Tables a notebook shows: numbers at the precision a repeated measurement has, the data untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from perf.cache.stats import CacheStats
from perf.measure import figure, readable
from perf.measure.timing import Comparison


@pytest.mark.parametrize(("value", "shown"), [
    (38332.123, "38,332"), (863.081039, "863"), (12.345, "12.3"), (1.2345, "1.23"), (0.193548, "0.194"),
    (0.0041234, "0.00412"), (48.0, "48"), (3, "3"), (-2.5, "-2.50"), (None, "-"), (float("nan"), "-"), ("br-4", "br-4"),
    (True, "True"),
])
def test_figure_keeps_three_significant_figures(value: object, shown: str) -> None:
    assert figure(value) == shown


def test_readable_formats_without_changing_the_data() -> None:
    frame = pd.DataFrame({"rps": [38332.123, 912.5], "p99_ms": [0.0041234, 12.345], "count": [48.0, 3.0]})
    html = readable(frame).to_html()
    for text in ("38,332", "912", "0.00412", "12.3", "48"):
        assert f">{text}<" in html, text
    assert "38332.123" not in html and "48.0" not in html
    assert frame.loc[0, "rps"] == 38332.123  # a Styler formats; the frame is the measurement
    with pytest.raises(ValueError, match="figures=0"):
        readable(frame, figures=0)


def test_a_comparison_table_is_in_the_unit_asked_for() -> None:
    samples = pd.DataFrame({"variant": ["a", "b"] * 3, "round": [0, 0, 1, 1, 2, 2],
                            "seconds": [4e-6, 2e-6, 4.2e-6, 2.1e-6, 3.9e-6, 2.2e-6]})
    table = Comparison(samples, "a").table("µs")
    assert list(table.columns) == ["median (µs)", "q1 (µs)", "q3 (µs)", "rounds", "speedup vs a"]
    assert table.loc["a", "median (µs)"] == 4.0 and table.loc["b", "median (µs)"] == 2.1
    assert table.loc["b", "speedup vs a"] == 2.0 and table["rounds"].tolist() == [3, 3]
    with pytest.raises(ValueError, match="unit='min'"):
        Comparison(samples, "a").table("min")


def test_cache_statistics_read_as_counts_percentages_and_milliseconds() -> None:
    stats = CacheStats()
    stats.incr("l1_hits", 30)
    stats.incr("l2_hits", 18)
    stats.incr("misses", 200)
    stats.record_load(0.0123456)
    shown = stats.to_frame(readable=True).set_index("metric")["value"]
    raw = stats.to_frame().set_index("metric")["value"]
    assert shown["l2_hits"] == "18" and shown["misses"] == "200"
    assert shown["hit_ratio"] == "19.4%" and raw["hit_ratio"] == pytest.approx(48 / 248)
    value, unit = shown["load_time_p50"].split()  # the histogram keeps 3 significant figures
    assert unit == "ms" and len(value.replace(".", "")) == 3 and abs(float(value) - 12.35) < 0.1
    assert shown["l2_latency_p50"] == "-"  # nothing recorded: a dash, not None or NaN
    assert set(raw.index) == set(shown.index) and all(isinstance(v, str) for v in shown)

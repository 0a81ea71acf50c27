"""SLO strings: parsing, clear errors, checks against results, the CLI's exit codes."""

from __future__ import annotations

import pytest

from perf.load.analysis.slo import SloError, check_slos, parse_slo
from perf.load.results import LoadResult


@pytest.mark.parametrize("text, metric, op, threshold, endpoint", [
    ("p99<50ms", "p99", "<", 0.050, None),
    ("p99.9 <= 0.2s", "p99.9", "<=", 0.2, None),
    ("p50<800us", "p50", "<", 0.0008, None),
    ("errors<0.1%", "errors", "<", 0.001, None),
    ("errors<=0.05", "errors", "<=", 0.05, None),
    ("rps>=400", "rps", ">=", 400.0, None),
    ("list:max<1s", "max", "<", 1.0, "list"),
])
def test_parse(text: str, metric: str, op: str, threshold: float, endpoint: str | None) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.op, slo.endpoint) == (metric, op, endpoint)
    assert slo.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text, message", [
    ("p99<<5ms", "cannot parse SLO"),
    ("latency<5ms", "cannot parse SLO"),
    ("", "cannot parse SLO"),
    ("errors<5ms", "errors take '%'"),
    ("errors<150%", "within 0..100%"),
    ("rps>5ms", "rps takes a plain number"),
    ("p101<5ms", "percentile must be in"),
    ("p99<5%", "latency units are"),
])
def test_bad_slo_strings_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(SloError, match=message):
        parse_slo(text)


def _result() -> LoadResult:
    result = LoadResult(duration=10.0)
    for i in range(1000):
        result.record("list" if i % 2 else "item", 0.010 if i < 980 else 0.200, 200 if i < 995 else 500, i / 100)
    return result


def test_checks_measure_the_result() -> None:
    checks = {c.slo.text: c for c in check_slos(_result(), [
        "p50<20ms", "p99<50ms", "errors<1%", "errors<0.1%", "rps>=100", "item:p50<=11ms", "max<1s"])}
    assert checks["p50<20ms"].met and not checks["p99<50ms"].met
    assert checks["errors<1%"].met and not checks["errors<0.1%"].met
    assert checks["errors<1%"].value == pytest.approx(0.005)
    assert checks["rps>=100"].met and checks["item:p50<=11ms"].met and checks["max<1s"].met
    assert "MISSED" in checks["p99<50ms"].describe()


def test_unknown_endpoint_is_named() -> None:
    with pytest.raises(SloError, match="no endpoint 'nope'"):
        check_slos(_result(), ["nope:p99<1s"])


def test_latency_slo_on_an_empty_result_is_missed() -> None:
    [check] = check_slos(LoadResult(duration=1.0), ["p99<1s"])
    assert not check.met

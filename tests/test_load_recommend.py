"""Recommendation rules fire on measurements that warrant them and stay silent otherwise."""

from __future__ import annotations

import pytest

from perf.load.analysis.recommend import Measurements, measurements_from, recommend
from perf.load.results import LoadResult


def _areas(m: Measurements) -> list[str]:
    return [r.area for r in recommend(m)]


def test_a_healthy_run_gets_no_advice() -> None:
    healthy = Measurements(client_cpu=0.3, error_rate=0.0, offered=1000, late=2, dropped=0,
                           pool_wait_p99_ms=0.5, pool_max_size=10, hit_ratio={"/products": 0.97},
                           server_shares={"db": 0.3, "cache": 0.2, "app": 0.4}, outside_share=0.2,
                           server_cpu=0.4, workers=1)
    assert recommend(healthy) == []


@pytest.mark.parametrize("fields, area, evidence", [
    ({"client_bound": True, "client_bound_evidence": "client-bound: 9,000 req/s is within 20% of the ceiling"},
     "client", "9,000 req/s"),
    ({"error_rate": 0.05, "errors": {"/x: timeout": 12}}, "errors", "error rate 5.0% (/x: timeout ×12)"),
    ({"offered": 1000, "late": 80}, "saturation", "80 late"),
    ({"server_cpu": 0.98, "workers": 1}, "server", "server CPU 0.98 cores"),
    ({"pool_wait_p99_ms": 38.0, "pool_max_size": 5}, "pool", "pool wait p99 38 ms at max_size=5"),
    ({"hit_ratio": {"/products": 0.41}}, "cache", "hit ratio 41% on /products"),
    ({"server_shares": {"app": 0.7, "db": 0.3}}, "framework", "app) 70% of server time"),
    ({"server_shares": {"db": 0.8, "app": 0.2}}, "db", "db 80% of server time"),
    ({"outside_share": 0.75}, "network", "75% of client-seen latency"),
])
def test_each_rule_fires_with_its_evidence(fields: dict[str, object], area: str, evidence: str) -> None:
    recs = recommend(Measurements(**fields))  # type: ignore[arg-type]
    assert [r.area for r in recs] == [area]
    assert evidence in recs[0].evidence
    assert recs[0].action


def test_a_busy_generator_cpu_alone_is_not_client_bound() -> None:
    # CPU flips with whatever else the machine runs: only the calibrated ceiling decides.
    assert recommend(Measurements(client_cpu=0.99)) == []


def test_client_bound_gets_generator_fixes_only() -> None:
    m = Measurements(client_bound=True, client_cpu=0.97, server_cpu=0.98, workers=1, error_rate=0.2,
                     server_shares={"db": 0.9}, hit_ratio={"/p": 0.1})
    recs = recommend(m)
    assert [r.area for r in recs] == ["client"]
    assert "--processes" in recs[0].action and "97%" in recs[0].evidence


def test_no_add_a_worker_when_a_second_worker_did_not_help() -> None:
    recs = recommend(Measurements(server_cpu=0.98, workers=1, second_worker_gain=1.02))
    assert [r.area for r in recs] == ["server"]
    assert "add a worker" not in recs[0].action and "measured 1.02x" in recs[0].evidence
    assert "add a worker" in recommend(Measurements(server_cpu=0.98, workers=1))[0].action
    # No pool advice without measured pool waits.
    assert "pool" not in _areas(Measurements(pool_max_size=5))


def test_most_urgent_first() -> None:
    m = Measurements(hit_ratio={"/p": 0.2}, error_rate=0.2, offered=100, dropped=50)
    recs = recommend(m)
    assert [r.priority for r in recs] == sorted(r.priority for r in recs)
    assert recs[0].priority == 1 and recs[-1].area == "cache"
    assert all(any(ch.isdigit() for ch in r.evidence) for r in recs)  # each cites its number
    assert recs[0].describe().startswith("[P1 ")


def test_measurements_from_a_result() -> None:
    result = LoadResult(duration=1.0, client_cpu=0.2)
    for i in range(100):
        result.record("list", 0.010, 200, i / 100, server_timing="db;dur=1, cache;dur=0.5, app;dur=7, total;dur=8.5")
    m = measurements_from(result, pool_wait_p99_ms=20.0, pool_max_size=4)
    assert m.server_shares["app"] == pytest.approx(7 / 8.5)
    assert m.outside_share == pytest.approx(0.15, abs=0.01)
    assert m.client_cpu == pytest.approx(0.2)
    assert {"framework", "pool"} == set(_areas(m))
    with pytest.raises(TypeError, match="unknown field 'pool_size'"):
        measurements_from(result, pool_size=3)

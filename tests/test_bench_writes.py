"""perf.bench.writes: the in-process comparison runs all three write paths against real services."""

from __future__ import annotations

import random

import pytest

from perf.bench.writes import WITH_XID, WITHOUT_XID, XID_STATEMENT, patch_scenario, print_xid_cost, xid_cost


async def test_xid_cost_times_every_path_in_every_round(database_url: str, redis_url: str, pg_schema: str,
                                                        redis_prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    comparison = await xid_cost(database_url, redis_url, products=20, repeat=3, number=2, schema=pg_schema,
                                namespace=redis_prefix.rstrip(":"))
    counts = comparison.samples.groupby("variant")["round"].count().to_dict()
    assert counts == {WITHOUT_XID: 3, XID_STATEMENT: 3, WITH_XID: 3}
    assert (comparison.samples.seconds > 0).all()
    print_xid_cost(comparison)
    assert "added" in capsys.readouterr().out


def test_the_patch_scenario_sends_the_token_and_a_price() -> None:
    request = patch_scenario("secret", 5).pick(random.Random(0))
    assert request.method == "PATCH" and request.target.startswith("/products/")
    assert request.headers == {"content-type": "application/json", "authorization": "Bearer secret"}
    assert request.body is not None and b'"price"' in request.body

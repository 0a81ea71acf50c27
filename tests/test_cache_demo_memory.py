"""perf.cache.demo_memory: the L1's memory cost, on the catalog's real payloads (PostgreSQL)."""

from __future__ import annotations

import asyncpg
import pytest

from perf.cache.demo_memory import l1_rss, payload_sizes
from perf.cache.demo_workload import create_catalog, load_category_report, load_product


async def test_payload_sizes_and_l1_rss_on_catalog_payloads(pg_conn: asyncpg.Connection, pg_schema: str) -> None:
    await create_catalog(pg_conn, schema=pg_schema, rows=400)
    products = [await load_product(pg_conn, pid, schema=pg_schema) for pid in range(1, 101)]
    reports = [await load_category_report(pg_conn, c, schema=pg_schema) for c in range(5)]
    sizes = payload_sizes({"product": products, "category report": reports}).set_index("payload")
    # decoded dicts, strs and floats are bigger than their JSON, but not by an order of magnitude
    assert (sizes["ratio"] > 1.3).all() and (sizes["ratio"] < 6).all()
    assert sizes.loc["category report", "serialized_bytes"] > 5 * sizes.loc["product", "serialized_bytes"]

    budget = int(2_000 * sizes.loc["product", "serialized_bytes"])
    rss = l1_rss(products, sizes=(2_000, 16_000), max_bytes=budget)
    unbounded = rss[rss["l1"] == "count only"].set_index("entries")
    bounded = rss[rss["l1"] != "count only"].set_index("entries")
    assert list(unbounded["entries_kept"]) == [2_000, 16_000]
    # RSS grows with the entries when only the count bounds L1 (8x the entries: well over 3x the RSS)
    assert unbounded.loc[16_000, "rss_growth_mib"] > 3 * unbounded.loc[2_000, "rss_growth_mib"] > 0
    # the byte bound keeps the estimate under budget and the RSS near the 2,000-entry point
    assert (bounded["l1_bytes"] <= budget).all() and bounded.loc[16_000, "entries_kept"] <= 2_000
    assert bounded.loc[16_000, "rss_growth_mib"] < 0.5 * unbounded.loc[16_000, "rss_growth_mib"]


def test_invalid_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="sizes="):
        l1_rss([{"id": 1}], sizes=(0,))
    with pytest.raises(ValueError, match="samples="):
        l1_rss([], sizes=(10,))
    with pytest.raises(ValueError, match="copies=0"):
        payload_sizes({"p": [{"id": 1}]}, copies=0)

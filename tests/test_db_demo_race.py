"""perf.db.demo_race: the side-by-side measurements the notebook and benchmark print."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.demo_race import page_growth, page_profile, product_rows, race_inserts
from perf.db.schema import ensure_seeded
from perf.db.writes import STRATEGIES


@pytest.fixture
async def seeded(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    await ensure_seeded(pg_conn, products=1000, categories=3, images_per_product=0)
    return pg_conn


async def test_race_inserts_times_every_strategy_and_cleans_up(seeded: asyncpg.Connection) -> None:
    rows = product_rows(50, seed=2)
    assert product_rows(50, seed=2) == rows
    comparison = await race_inserts(seeded, rows, repeat=2, warmup=0, batch_size=20)
    summary = comparison.summary()
    assert list(summary.index) == list(STRATEGIES)
    assert (summary["n"] == 2).all() and summary.loc["row_by_row", "ratio_to_baseline"] == 1.0
    left = await seeded.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'race\\_%'"
                                 " AND schemaname = current_schema()")
    assert left == 0


async def test_race_rejects_unknown_baseline(seeded: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="baseline 'nope'"):
        await race_inserts(seeded, product_rows(5), baseline="nope")


async def test_page_growth_and_profile(seeded: asyncpg.Connection) -> None:
    comparison, growth = await page_growth(seeded, limit=50, repeat=3, warmup=1)
    assert set(growth) == {"offset", "keyset"} and all(v > 0 for v in growth.values())
    assert set(comparison.samples["variant"]) == {"offset_first", "offset_last", "keyset_first", "keyset_last"}
    frame = await page_profile(seeded, chunk_size=300)
    assert frame.groupby("reader")["rows"].sum().to_dict() == {"cursor": 1000, "keyset": 1000, "offset": 1000}
    assert list(frame[frame["reader"] == "offset"]["page"]) == [0, 1, 2, 3]


async def test_page_growth_needs_enough_rows(seeded: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="needs at least"):
        await page_growth(seeded, limit=600)

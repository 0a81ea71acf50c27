"""perf.db.plans: structured plans, always rolled back, one statement only."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.plans import explain
from perf.db.schema import ensure_seeded


@pytest.fixture
async def seeded(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    await ensure_seeded(pg_conn, products=2000, categories=5, images_per_product=1)
    return pg_conn


async def test_explain_analyze_returns_structured_plan(seeded: asyncpg.Connection) -> None:
    result = await explain(seeded, "SELECT * FROM products WHERE id = $1", 42)
    assert result.node_types == ["Index Scan"]
    assert result.indexes_used == ["products_pkey"]
    node = result.root
    assert node.relation == "products" and node.actual_rows == 1 and node.estimated_rows >= 1
    assert result.execution_ms is not None and result.planning_ms is not None
    assert result.shared_hit + result.shared_read > 0
    assert "Index Scan using products_pkey on products" in result.tree()
    assert "Index Cond" in result.tree()


async def test_seq_scan_and_children(seeded: asyncpg.Connection) -> None:
    result = await explain(seeded, "SELECT count(*) FROM products WHERE description IS NULL")
    assert result.seq_scanned == ["products"]
    frame = result.to_frame()
    assert list(frame["node_type"]) == result.node_types and frame["depth"].max() >= 1


async def test_delete_under_explain_deletes_nothing(seeded: asyncpg.Connection) -> None:
    result = await explain(seeded, "DELETE FROM product_images WHERE product_id <= $1", 1000)
    assert result.root.node_type == "ModifyTable"
    assert await seeded.fetchval("SELECT count(*) FROM product_images") == 2000
    assert not seeded.is_in_transaction()


async def test_inside_a_transaction_only_the_savepoint_rolls_back(seeded: asyncpg.Connection) -> None:
    async with seeded.transaction():
        await seeded.execute("DELETE FROM product_images WHERE product_id = 1")
        await explain(seeded, "DELETE FROM product_images")
        assert await seeded.fetchval("SELECT count(*) FROM product_images") == 1999


async def test_multiple_statements_are_rejected(seeded: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="single statement"):
        await explain(seeded, "SELECT 1; DELETE FROM product_images")
    assert await seeded.fetchval("SELECT count(*) FROM product_images") == 2000
    with pytest.raises(ValueError, match="non-empty"):
        await explain(seeded, "  ")


async def test_plain_explain_has_no_actuals(seeded: asyncpg.Connection) -> None:
    result = await explain(seeded, "SELECT * FROM products", analyze=False, buffers=False)
    assert result.execution_ms is None and result.root.actual_rows is None
    assert "est 2,000 rows" in result.tree()


async def test_a_runaway_statement_is_cancelled_at_the_timeout(seeded: asyncpg.Connection) -> None:
    with pytest.raises(TimeoutError, match="timeout=0.2"):
        await explain(seeded, "SELECT pg_sleep(5)", timeout=0.2)
    assert await seeded.fetchval("SHOW statement_timeout") == "0"  # SET LOCAL went with the rollback


async def test_advisory_locks_taken_by_the_statement_are_released(seeded: asyncpg.Connection) -> None:
    await seeded.execute("SELECT pg_advisory_lock(1)")  # the caller's own: kept
    try:
        await explain(seeded, "SELECT pg_advisory_lock(42), pg_advisory_lock_shared(7, 8)")
        held = await seeded.fetch("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert [r["objid"] for r in held] == [1]
    finally:
        await seeded.execute("SELECT pg_advisory_unlock_all()")

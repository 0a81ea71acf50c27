"""perf.db.schema: idempotent DDL, reproducible seeding, constraints."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.schema import SeedInfo, create_schema, ensure_seeded, populate_products, seed_info


async def test_create_schema_is_idempotent(pg_conn: asyncpg.Connection, pg_schema: str) -> None:
    await create_schema(pg_conn)
    await create_schema(pg_conn)
    tables = await pg_conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", pg_schema
    )
    assert [r["table_name"] for r in tables] == ["categories", "product_images", "products", "seed_info"]


async def test_seed_is_reproducible_and_appends(pg_connect, pg_schema: str) -> None:
    a, b = await pg_connect(), await pg_connect()
    await create_schema(a)
    assert await populate_products(a, products=500, categories=5, images_per_product=2, seed=7) == 500
    first = await a.fetch("SELECT category_id, name, price, created_at, description FROM products ORDER BY id")
    assert await a.fetchval("SELECT count(*) FROM product_images") == 1000
    assert await a.fetchval("SELECT count(*) FROM categories") == 5
    # Same seed again: appended after the existing ids, same content, no duplicate categories.
    await populate_products(b, products=500, categories=5, images_per_product=2, seed=7)
    second = await a.fetch("SELECT category_id, name, price, created_at, description FROM products "
                           "WHERE id > 500 ORDER BY id")
    assert [r["price"] for r in second] == [r["price"] for r in first]
    assert [r["created_at"] for r in second] == [r["created_at"] for r in first]
    assert await a.fetchval("SELECT count(*) FROM categories") == 5
    # The identity moved past the copied ids: a plain INSERT does not collide.
    new_id = await a.fetchval("INSERT INTO products (category_id, name, price) VALUES (1, 'x', 1) RETURNING id")
    assert new_id == 1001


async def test_ensure_seeded_skips_same_data(pg_conn: asyncpg.Connection) -> None:
    assert await ensure_seeded(pg_conn, products=200, categories=3, seed=1) is True
    assert await seed_info(pg_conn) == SeedInfo(200, 3, 3, 1)
    assert await ensure_seeded(pg_conn, products=200, categories=3, seed=1) is False
    assert await ensure_seeded(pg_conn, products=100, categories=3, seed=1) is True
    assert await pg_conn.fetchval("SELECT count(*) FROM products") == 100


async def test_constraints_hold(pg_conn: asyncpg.Connection) -> None:
    await create_schema(pg_conn)
    await populate_products(pg_conn, products=1, categories=1, images_per_product=1)
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_conn.execute("INSERT INTO products (category_id, name, price) VALUES (1, 'neg', -1)")
    await pg_conn.execute("DELETE FROM products")
    assert await pg_conn.fetchval("SELECT count(*) FROM product_images") == 0


async def test_seed_rejects_bad_sizes(pg_conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="products must be"):
        await populate_products(pg_conn, products=-1)

"""perf.db.queries: the product reads the API reuses, on a real seeded schema."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from perf.db.queries import (
    count_products,
    get_product,
    get_products,
    get_products_n_plus_one,
    list_page,
    list_page_concurrent,
    list_products_keyset,
    list_products_offset,
)
from perf.db.schema import ensure_seeded


@pytest.fixture
async def seeded(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    await ensure_seeded(pg_conn, products=300, categories=4, images_per_product=3, seed=3)
    return pg_conn


async def test_get_product_joins_category_and_images(seeded: asyncpg.Connection) -> None:
    await seeded.execute("UPDATE product_images SET position = 2 - position WHERE product_id = 5")
    product = await get_product(seeded, 5)
    assert product is not None
    expected_category = await seeded.fetchval(
        "SELECT c.name FROM categories c JOIN products p ON p.category_id = c.id WHERE p.id = 5"
    )
    assert product["category"] == expected_category
    assert product["image_urls"] == [f"https://img.example.com/p/5/{pos}.jpg" for pos in (2, 1, 0)]
    assert await get_product(seeded, 10_000) is None


async def test_product_without_images_has_empty_list(seeded: asyncpg.Connection) -> None:
    await seeded.execute("DELETE FROM product_images WHERE product_id = 7")
    product = await get_product(seeded, 7)
    assert product is not None and product["image_urls"] == []


async def test_n_plus_one_and_join_agree(seeded: asyncpg.Connection) -> None:
    ids = [3, 1, 250, 99999, 42]
    joined = await get_products(seeded, ids)
    assert [p["id"] for p in joined] == [1, 3, 42, 250]
    assert await get_products_n_plus_one(seeded, ids) == joined


async def test_keyset_pages_cover_everything_once(seeded: asyncpg.Connection) -> None:
    seen: list[int] = []
    after = 0
    while True:
        page = await list_products_keyset(seeded, after_id=after, limit=70)
        seen += [p["id"] for p in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == list(range(1, 301))


async def test_category_filter_keyset_and_offset_agree(seeded: asyncpg.Connection) -> None:
    category = await seeded.fetchval("SELECT min(id) FROM categories")
    total = await count_products(seeded, category_id=category)
    assert 0 < total < 300
    keyset = await list_products_keyset(seeded, limit=1000, category_id=category)
    offset = await list_products_offset(seeded, offset=0, limit=1000, category_id=category)
    assert keyset.items == offset.items and len(keyset.items) == total
    assert {p["category_id"] for p in keyset.items} == {category}
    second = await list_products_offset(seeded, offset=10, limit=5, category_id=category)
    assert second.items == keyset.items[10:15]


async def test_limit_is_validated(seeded: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="limit must be"):
        await list_products_keyset(seeded, limit=0)
    with pytest.raises(ValueError, match="offset must be"):
        await list_products_offset(seeded, offset=-1)


async def test_gather_on_one_connection_fails_and_pool_fixes_it(
    seeded: asyncpg.Connection, database_url: str, pg_schema: str
) -> None:
    # return_exceptions lets the first query finish, so the connection is idle afterwards.
    results = await asyncio.gather(
        count_products(seeded), list_products_keyset(seeded, limit=5), return_exceptions=True
    )
    assert results[0] == 300
    assert isinstance(results[1], asyncpg.InterfaceError)
    assert "another operation is in progress" in str(results[1])
    sequential = await list_page(seeded, limit=5)
    async with asyncpg.create_pool(
        database_url, min_size=2, max_size=2, server_settings={"search_path": pg_schema}
    ) as pool:
        concurrent = await list_page_concurrent(pool, limit=5)
    assert concurrent == sequential
    assert concurrent.total == 300 and [p["id"] for p in concurrent.items] == [1, 2, 3, 4, 5]

"""The product reads the API needs, written once (the API imports these, it writes no SQL).

All functions take an asyncpg connection (or, for the concurrent list page, a pool)
whose ``search_path`` holds the tables of :mod:`perf.db.schema`. Parameters are always
bound (``$1``); the only SQL chosen at run time is one of a few constant strings.

* :func:`get_product` — one product with its category name and image URLs, one query.
* :func:`get_products` — many products the same way (the JOIN side of N+1 vs JOIN).
* :func:`get_products_n_plus_one` — the same result the slow way: 1 + 2N queries.
* :func:`list_products_keyset` — a page after a given id (``WHERE id > $last``): cost
  independent of how deep the page is.
* :func:`list_products_offset` — a page by ``LIMIT/OFFSET``: cost grows with the offset.
* :func:`count_products` — the total for the list page (optionally per category).
* :func:`list_page` / :func:`list_page_concurrent` — count + page, sequentially on one
  connection or concurrently on two pooled connections.

Products are returned as plain dicts (``id, category_id, category, name, price,
created_at, description`` and, for single products, ``image_urls``) so they serialise
directly; ``price`` is a :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

__all__ = [
    "ProductPage",
    "count_products",
    "get_product",
    "get_products",
    "get_products_n_plus_one",
    "list_page",
    "list_page_concurrent",
    "list_products_keyset",
    "list_products_offset",
]

#: Largest page the list functions accept; a bigger ``limit`` is a client bug.
MAX_LIMIT = 1000

_DETAIL = """
SELECT p.id, p.category_id, c.name AS category, p.name, p.price, p.created_at, p.description,
       coalesce(img.urls, ARRAY[]::text[]) AS image_urls
FROM products p
JOIN categories c ON c.id = p.category_id
LEFT JOIN LATERAL (
    SELECT array_agg(i.url ORDER BY i.position, i.id) AS urls
    FROM product_images i
    WHERE i.product_id = p.id
) img ON true
"""
_GET_ONE = _DETAIL + "WHERE p.id = $1"
_GET_MANY = _DETAIL + "WHERE p.id = ANY($1::bigint[]) ORDER BY p.id"

_LIST = """
SELECT p.id, p.category_id, c.name AS category, p.name, p.price, p.created_at, p.description
FROM products p
JOIN categories c ON c.id = p.category_id
"""
# One constant statement per shape rather than "$1 IS NULL OR ...": a generic plan for
# the latter cannot use the (category_id, id) index.
_KEYSET = _LIST + "WHERE p.id > $1 ORDER BY p.id LIMIT $2"
_KEYSET_CATEGORY = _LIST + "WHERE p.category_id = $3 AND p.id > $1 ORDER BY p.id LIMIT $2"
_OFFSET = _LIST + "ORDER BY p.id LIMIT $1 OFFSET $2"
_OFFSET_CATEGORY = _LIST + "WHERE p.category_id = $3 ORDER BY p.id LIMIT $1 OFFSET $2"
_COUNT = "SELECT count(*) FROM products"
_COUNT_CATEGORY = "SELECT count(*) FROM products WHERE category_id = $1"


class Acquirer(Protocol):
    """Anything with ``acquire()`` returning an async context manager over a connection
    (``asyncpg.Pool``, the workbook's own ``perf.pool`` pool)."""

    def acquire(self) -> AbstractAsyncContextManager[Any]: ...


@dataclass(frozen=True)
class ProductPage:
    """One page of the product list.

    ``next_after`` is the keyset cursor for the following page (the last id on this
    page), None when this page is the last. ``total`` is filled by :func:`list_page`.
    """

    items: list[dict[str, Any]]
    next_after: int | None
    total: int | None = None


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}; pass e.g. limit=20")


def _page(rows: Sequence[asyncpg.Record], limit: int) -> ProductPage:
    items = [dict(r) for r in rows]
    next_after = items[-1]["id"] if len(items) == limit else None
    return ProductPage(items=items, next_after=next_after)


async def get_product(conn: asyncpg.Connection, product_id: int) -> dict[str, Any] | None:
    """Return one product with ``category`` (name) and ``image_urls`` (by position), or None.

    One round trip: products JOIN categories, images aggregated with ``array_agg``.
    """
    row = await conn.fetchrow(_GET_ONE, product_id)
    return None if row is None else dict(row)


async def get_products(conn: asyncpg.Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Return the products with these ids (id order, missing ids skipped), like
    :func:`get_product`, in ONE query whatever ``len(ids)``."""
    rows = await conn.fetch(_GET_MANY, list(ids))
    return [dict(r) for r in rows]


async def get_products_n_plus_one(conn: asyncpg.Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Same result as :func:`get_products`, the way ORMs do it by accident: 1 + 2N queries.

    One query for the products, then for each product one for its category name and
    one for its images. Kept as the baseline the notebook measures the JOIN against.
    """
    rows = await conn.fetch(
        "SELECT id, category_id, name, price, created_at, description FROM products "
        "WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(ids),
    )
    result = []
    for row in rows:
        product = dict(row)
        category = await conn.fetchval("SELECT name FROM categories WHERE id = $1", row["category_id"])
        images = await conn.fetch(
            "SELECT url FROM product_images WHERE product_id = $1 ORDER BY position, id", row["id"]
        )
        result.append(
            {
                "id": product["id"],
                "category_id": product["category_id"],
                "category": category,
                "name": product["name"],
                "price": product["price"],
                "created_at": product["created_at"],
                "description": product["description"],
                "image_urls": [r["url"] for r in images],
            }
        )
    return result


async def list_products_keyset(
    conn: asyncpg.Connection, *, after_id: int = 0, limit: int = 20, category_id: int | None = None
) -> ProductPage:
    """Return the ``limit`` products with ``id > after_id`` in id order (keyset paging).

    Pass the previous page's ``next_after`` to get the next page. With ``category_id``
    the page is restricted to that category and served by the ``(category_id, id)``
    index. The cost is one index range scan of ``limit`` rows however deep the page.
    """
    _check_limit(limit)
    if category_id is None:
        rows = await conn.fetch(_KEYSET, after_id, limit)
    else:
        rows = await conn.fetch(_KEYSET_CATEGORY, after_id, limit, category_id)
    return _page(rows, limit)


async def list_products_offset(
    conn: asyncpg.Connection, *, offset: int = 0, limit: int = 20, category_id: int | None = None
) -> ProductPage:
    """Return ``limit`` products after skipping ``offset`` of them, in id order (OFFSET paging).

    PostgreSQL produces and discards the ``offset`` skipped rows, so page N costs
    O(N * limit): fine for the first pages, slow deep into a large table.
    """
    _check_limit(limit)
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an integer >= 0, got {offset!r}")
    if category_id is None:
        rows = await conn.fetch(_OFFSET, limit, offset)
    else:
        rows = await conn.fetch(_OFFSET_CATEGORY, limit, offset, category_id)
    return _page(rows, limit)


async def count_products(conn: asyncpg.Connection, *, category_id: int | None = None) -> int:
    """Return how many products there are (in ``category_id`` if given)."""
    if category_id is None:
        count: int = await conn.fetchval(_COUNT)
    else:
        count = await conn.fetchval(_COUNT_CATEGORY, category_id)
    return count


async def list_page(
    conn: asyncpg.Connection, *, after_id: int = 0, limit: int = 20, category_id: int | None = None
) -> ProductPage:
    """Count + keyset page on ONE connection, one after the other (two round trips in series).

    A single asyncpg connection runs one statement at a time: ``asyncio.gather`` of
    both on the same connection raises ``InterfaceError: another operation is in
    progress``. :func:`list_page_concurrent` is the fix.
    """
    total = await count_products(conn, category_id=category_id)
    page = await list_products_keyset(conn, after_id=after_id, limit=limit, category_id=category_id)
    return ProductPage(items=page.items, next_after=page.next_after, total=total)


async def list_page_concurrent(
    pool: Acquirer, *, after_id: int = 0, limit: int = 20, category_id: int | None = None
) -> ProductPage:
    """Count + keyset page concurrently on TWO pooled connections (latency ≈ the slower one).

    ``pool`` is anything with ``acquire()`` (``asyncpg.Pool`` or ``perf.pool``'s pool);
    it needs at least two free connections for the two queries to overlap.
    """
    _check_limit(limit)

    async def count() -> int:
        async with pool.acquire() as conn:
            return await count_products(conn, category_id=category_id)

    async def page() -> ProductPage:
        async with pool.acquire() as conn:
            return await list_products_keyset(conn, after_id=after_id, limit=limit, category_id=category_id)

    total, first = await asyncio.gather(count(), page())
    return ProductPage(items=first.items, next_after=first.next_after, total=total)

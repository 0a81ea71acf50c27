"""Exercises for notebook 01: invalidation that never serves stale data, and warming.

Each check builds a small catalog in a scratch schema and two caches on one Redis
namespace (two "processes", each with its own L1), hands the learner a :class:`Shop`,
and verifies what a user of the shop would see afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from perf.cache import MultiLevelCache
from perf.cache.demo_workload import create_catalog, load_category_report, load_product
from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise, scratch_names, service_urls

ROWS = 400  # 20 categories of 20 products: small enough to build in well under a second


@dataclass
class Shop:
    """What the exercise code gets: the database pool, a cache, and the read paths of the shop.

    Reads go through the cache with tags: a product is stored under :meth:`product_key`
    with tag ``product:<id>``; a category report under :meth:`report_key` with tag
    ``category:<n>``.
    """

    pool: asyncpg.Pool
    cache: MultiLevelCache
    schema: str
    loads: list[str] = field(default_factory=list)

    def product_key(self, product_id: int) -> str:
        """The cache key of one product."""
        return f"product:{product_id}"

    def report_key(self, category: int) -> str:
        """The cache key of one category's report."""
        return f"report:{category}"

    async def load_product(self, product_id: int) -> dict[str, Any] | None:
        """Read one product from PostgreSQL (no cache)."""
        self.loads.append(self.product_key(product_id))
        return await load_product(self.pool, product_id, schema=self.schema)

    async def load_report(self, category: int) -> dict[str, Any]:
        """Compute one category's report in PostgreSQL (no cache)."""
        self.loads.append(self.report_key(category))
        return await load_category_report(self.pool, category, schema=self.schema)

    async def read_product(self, product_id: int) -> dict[str, Any] | None:
        """What a product page shows: the cached product, loaded on a miss."""
        return await self.cache.get_or_load(self.product_key(product_id), lambda: self.load_product(product_id),
                                            tags=[f"product:{product_id}"])

    async def read_report(self, category: int) -> dict[str, Any]:
        """What a category page shows: the cached report, loaded on a miss."""
        return await self.cache.get_or_load(self.report_key(category), lambda: self.load_report(category),
                                            tags=[f"category:{category}"])


@dataclass
class _Setup:
    shop: Shop
    other: Shop
    close: Callable[[], Awaitable[None]]


CHECK_REDIS_TIMEOUT = 5.0  # seconds


async def _setup(key: str, settings: Settings, database_url: str | None, redis_url: str | None) -> _Setup:
    db_url, r_url = service_urls(settings, database_url, redis_url)
    schema, prefix = scratch_names(key)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await create_catalog(conn, schema=schema, rows=ROWS)
    # The checks judge what the learner's code stores, not how fast Redis answers: a generous
    # timeout keeps a busy machine from failing the cache open (and the check with it).
    cache = await MultiLevelCache(r_url, namespace=prefix, default_ttl=300, redis_timeout=CHECK_REDIS_TIMEOUT).start()
    other = await MultiLevelCache(r_url, namespace=prefix, default_ttl=300, redis_timeout=CHECK_REDIS_TIMEOUT).start()

    async def close() -> None:
        for c in (cache, other):
            await c.clear()
            await c.close()
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()

    return _Setup(Shop(pool, cache, schema), Shop(pool, other, schema), close)


async def _eventually(read: Callable[[], Awaitable[bool]], *, within: float = 2.0) -> bool:
    """True once ``read()`` is true; pub/sub invalidation reaches another process asynchronously."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await read():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)


@exercise("01.invalidation", title="a price change never serves a stale page", answer="update_price",
          nudge="List every cached thing that shows a product's price; section 6 shows how to drop more than one key.")
async def invalidation(update_price: Callable[[Shop, int, float], Awaitable[None]], *, settings: Settings,
                       database_url: str | None = None, redis_url: str | None = None, **_ignored: Any) -> Report:
    """``await update_price(shop, product_id, price)`` must store the new price in PostgreSQL and make
    every page that shows it (the product and its category's report, in this process and in
    another one) show the new price right after it returns."""
    report = Report(hint="After the UPDATE commits, drop what shows the product from the cache everywhere: "
                         "the product page and its category's report are stored with tags. Deleting a key "
                         "only in this process's L1 leaves other processes stale.")
    setup = await _setup("01.invalidation", settings, database_url, redis_url)
    shop, other = setup.shop, setup.other
    try:
        product = await shop.read_product(7)
        assert product is not None
        category = int(product["category"])
        for s in (shop, other):  # both processes have both pages cached
            await s.read_product(7)
            await s.read_report(category)
        new_price = 99_999.0  # the most expensive product of its category from now on
        await call_learner(report, "update_price(shop, 7, 99999.0)", update_price, shop, 7, new_price,
                           hint=report.hint)
        async with shop.pool.acquire() as conn:
            stored = await conn.fetchval(f"SELECT price::float8 FROM {shop.schema}.catalog WHERE id = 7")
        report.require("PostgreSQL holds the new price", stored == new_price, f"price {stored}")
        fresh_product = await shop.read_product(7)
        report.require("this process's product page shows it",
                       fresh_product is not None and fresh_product["price"] == new_price,
                       f"price {fresh_product and fresh_product['price']}")
        top = (await shop.read_report(category))["top"][0]
        report.require("this process's category report shows it", top["id"] == 7 and top["price"] == new_price,
                       f"top product {top['id']} at {top['price']}")

        async def other_fresh() -> bool:
            p = await other.read_product(7)
            r = (await other.read_report(category))["top"][0]
            return p is not None and p["price"] == new_price and r["id"] == 7
        report.require("another process's pages show it too (within 2 s)", await _eventually(other_fresh))
    finally:
        await setup.close()
    return report


@exercise("01.warming", title="warm the top products before traffic arrives", answer="warm_top",
          nudge="Section 2 warms a cache: what does a request look up, and under which key?")
async def warming(warm_top: Callable[[Shop, list[int]], Awaitable[None]], *, settings: Settings,
                  database_url: str | None = None, redis_url: str | None = None, **_ignored: Any) -> Report:
    """``await warm_top(shop, ids)`` must leave every product in ``ids`` cached, under the key and
    tags the shop reads with, so the first real read of each is a hit (no database load)."""
    report = Report(hint="For each id, store what `shop.load_product(id)` returns under `shop.product_key(id)` "
                         "with the tag the shop uses (or call the shop's own read path once); "
                         "`perf.cache.warm` runs loads concurrently.")
    setup = await _setup("01.warming", settings, database_url, redis_url)
    shop = setup.shop
    ids = list(range(1, 41))
    try:
        await call_learner(report, "warm_top(shop, ids)", warm_top, shop, ids, hint=report.hint)
        shop.loads.clear()
        values = [await shop.read_product(i) for i in ids]
        cold = [k for k in shop.loads]
        report.require(f"all {len(ids)} products are hits after warming", not cold,
                       f"{len(cold)} of {len(ids)} went to the database" if cold else "")
        async with shop.pool.acquire() as conn:
            rows = {r["id"]: float(r["price"]) for r in await conn.fetch(
                f"SELECT id, price FROM {shop.schema}.catalog WHERE id = ANY($1::bigint[])", ids)}
        right = all(v is not None and v["price"] == rows[v["id"]] for v in values)
        report.require("the cached values are the database's", right)
        untagged = await shop.cache.invalidate_tags(*(f"product:{i}" for i in ids))
        shop.loads.clear()
        await shop.read_product(ids[0])
        report.require("entries carry the product tag (a price change can drop them)", bool(shop.loads),
                       f"invalidate_tags dropped {untagged}")
    finally:
        await setup.close()
    return report

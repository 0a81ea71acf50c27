"""Exercises for the caching notebooks: warming (01) and invalidation that never serves stale data (08).

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
from perf.exercises.core import LearnerError, Report, call_learner, exercise, scratch_names, service_urls

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


@exercise("08.invalidation", title="a price change never serves a stale page", answer="update_price",
          nudge="List every cached thing that shows a product's price; section 2 shows how to drop more than one key.")
async def invalidation(update_price: Callable[[Shop, int, float], Awaitable[None]], *, settings: Settings,
                       database_url: str | None = None, redis_url: str | None = None, **_ignored: Any) -> Report:
    """``await update_price(shop, product_id, price)`` must store the new price in PostgreSQL and make
    every page that shows it (the product and its category's report, in this process and in
    another one) show the new price right after it returns."""
    report = Report(hint="After the UPDATE commits, drop what shows the product from the cache everywhere: "
                         "the product page and its category's report are stored with tags. Deleting a key "
                         "only in this process's L1 leaves other processes stale.")
    setup = await _setup("08.invalidation", settings, database_url, redis_url)
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


@exercise("01.two_level", title="a two-level cache with statistics, and its hit ratio", answer="TwoLevelCache",
          nudge="Section 1 timed an L1 hit against an L2 hit: what must `get` try first, and what must it keep?")
async def two_level(cache_class: Callable[..., Any], *, settings: Settings, database_url: str | None = None,
                    redis_url: str | None = None, **_ignored: Any) -> Report:
    """``TwoLevelCache(redis, prefix, max_entries=100)``: an in-process L1 of at most ``max_entries``
    (least recently used out first) in front of Redis (every key under ``prefix``). ``await get(key)``
    returns the value or ``None``: from L1, else from Redis (then kept in L1). ``await set(key, value,
    ttl)`` stores JSON in Redis with that TTL (seconds) and keeps the value in L1 for the same TTL.
    ``stats()`` returns ``l1_hits``, ``l2_hits``, ``misses`` (counts of ``get`` calls) and ``hit_ratio``
    ((l1_hits + l2_hits) / gets; 0.0 before any)."""
    import json
    import random

    import redis.asyncio as redis

    from perf.cache.demo_keys import unlink_prefix

    report = Report(hint="Keep an ordered in-process map of key -> (value, expiry time): a read moves its key to "
                         "the most recent end, a store past the bound drops the least recent one, an expired entry "
                         "counts as absent. Fall back to Redis (decode JSON) and remember what came back. Count "
                         "each get's outcome as it happens; the ratio divides hits by gets.")
    _, r_url = service_urls(settings, database_url, redis_url)
    _, prefix = scratch_names("01.two_level")
    client = redis.from_url(r_url)
    prefix += ":"

    def counts(stats: Any) -> tuple[Any, ...]:
        found = tuple(stats.get(k) for k in ("l1_hits", "l2_hits", "misses")) if isinstance(stats, dict) else ()
        return found if all(isinstance(n, int) for n in found) else ()

    try:
        here = await call_learner(report, "TwoLevelCache(redis, prefix, max_entries=10)", cache_class, client,
                                  prefix, 10, hint=report.hint)
        other = await call_learner(report, "a second TwoLevelCache (another process)", cache_class, client,
                                   prefix, 10, hint=report.hint)
        value = {"id": 1, "name": "Kettle", "price": 9.5}
        await call_learner(report, "set('p:1', value, 60)", here.set, "p:1", value, 60, hint=report.hint)
        got = [await call_learner(report, "get", c.get, k, hint=report.hint)
               for c, k in ((here, "p:1"), (other, "p:1"), (other, "p:1"), (other, "p:404"))]
        report.require("get returns what set stored, here and in another process",
                       got[:3] == [value] * 3 and got[3] is None, repr(got)[:120])
        stats_here, stats_other = here.stats(), other.stats()
        report.require("this process: 1 L1 hit; the other: 1 L2 hit, then 1 L1 hit, and 1 miss",
                       counts(stats_here) == (1, 0, 0) and counts(stats_other) == (1, 1, 1),
                       f"here {stats_here}, other {stats_other}")
        ratio = stats_other.get("hit_ratio") if isinstance(stats_other, dict) else None
        report.require("hit_ratio is hits over gets", isinstance(ratio, float) and abs(ratio - 2 / 3) < 1e-9,
                       f"{ratio!r}, expected 2/3")
        stored = [k async for k in client.scan_iter(match=f"{prefix}*")]
        raw = await client.get(stored[0]) if len(stored) == 1 else None
        try:
            decoded = json.loads(raw) if raw is not None else None
        except ValueError:
            decoded = None
        report.require("Redis holds one key under the prefix, as JSON", decoded == value,
                       f"{len(stored)} keys; {raw[:40]!r}" if raw else f"{len(stored)} keys under the prefix")
        ttl = await client.ttl(stored[0]) if stored else -2
        report.require("with the TTL it was given", 0 < ttl <= 60, f"TTL {ttl}")

        for i in range(15):  # past the bound of 10: the five oldest leave L1
            await here.set(f"k:{i}", i, 60)
        before = counts(here.stats())
        newest, oldest = await here.get("k:14"), await here.get("k:0")
        after = counts(here.stats())
        delta = tuple(a - b for a, b in zip(after, before, strict=True)) if before and after else ()
        report.require("L1 keeps at most max_entries: the newest is an L1 hit, the oldest an L2 hit",
                       (newest, oldest) == (14, 0) and delta == (1, 1, 0), f"l1/l2/miss change {delta}")

        await here.set("short", "lived", 1)
        await asyncio.sleep(1.2)
        report.require("an entry is gone from both levels after its TTL", await here.get("short") is None)

        reader = cache_class(client, prefix + "zipf:", 50)
        rng, misses, reads = random.Random(7), 0, 400
        weights = [1 / (rank + 1) for rank in range(200)]
        for key in rng.choices(range(200), weights=weights, k=reads):
            if await reader.get(f"item:{key}") is None:
                misses += 1
                await reader.set(f"item:{key}", {"id": key}, 60)
        stats = reader.stats()
        truth = (reads - misses) / reads
        ratio = stats.get("hit_ratio") if isinstance(stats, dict) else None
        report.require(f"read-through over {reads} Zipf reads: stats count every miss and give the hit ratio",
                       isinstance(stats, dict) and stats.get("misses") == misses
                       and isinstance(ratio, float) and abs(ratio - truth) < 1e-9,
                       f"hit ratio {truth:.0%} ({misses} misses); stats said {stats}")
    except LearnerError:
        raise
    except Exception as exc:  # the learner's class failed outside call_learner: a finding, not a traceback
        report.require("your class runs without an error", False, f"{type(exc).__name__}: {exc}")
    finally:
        await unlink_prefix(client, prefix)
        await client.aclose()
    return report


@exercise("08.stampede", title="a hot key's loader runs once however many ask at once", answer="SingleFlight",
          nudge="Section 1 ran the same burst with and without single-flight: what did the other 99 requests do?")
async def stampede(flight_class: Callable[[], Any], *, settings: Settings, database_url: str | None = None,
                   redis_url: str | None = None, **_ignored: Any) -> Report:
    """``SingleFlight()``; ``await flight.run(key, loader)`` calls ``loader()`` (a coroutine function) and
    returns its result. While a call for ``key`` is in progress, other calls for that key wait for it
    and get the same result (or the same exception) instead of calling ``loader`` again. Once it has
    finished, the next ``run(key, ...)`` calls the loader again (it is not a cache). Calls for
    different keys do not wait for each other."""
    report = Report(hint="Keep, per key, the one task that is loading it: the first caller starts it, later "
                         "callers await that same task, and it is forgotten when it ends, with a result or an "
                         "exception. Shield the shared task so one waiter giving up does not cancel it for all.")
    db_url, _ = service_urls(settings, database_url, redis_url)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=60)
    calls: list[str] = []

    async def query(label: str, seconds: float = 0.1) -> int:
        calls.append(label)
        return int(await pool.fetchval("SELECT $1::int FROM pg_sleep($2)", len(calls), seconds))

    try:
        flight = await call_learner(report, "SingleFlight()", flight_class, hint=report.hint)
        results = await asyncio.gather(*(flight.run("hot", lambda: query("hot")) for _ in range(50)),
                                       return_exceptions=True)
        report.require("50 concurrent runs of one key: the loader ran once", calls.count("hot") == 1,
                       f"{calls.count('hot')} loader calls")
        report.require("and all 50 got its result", len(set(map(repr, results))) == 1
                       and not isinstance(results[0], BaseException),
                       f"{len(set(map(repr, results)))} different results, the first {results[0]!r}"[:120])
        before = calls.count("hot")
        await flight.run("hot", lambda: query("hot", 0))
        report.require("once finished, the next run loads again (not a cache)", calls.count("hot") == before + 1,
                       f"{calls.count('hot') - before} loader calls")

        b_started = asyncio.Event()

        async def load_a() -> int:
            await asyncio.wait_for(b_started.wait(), timeout=3)  # only finishes if b runs meanwhile
            return await query("a", 0)

        async def load_b() -> int:
            b_started.set()
            return await query("b", 0)

        both = await asyncio.gather(flight.run("a", load_a), flight.run("b", load_b), return_exceptions=True)
        report.require("different keys load side by side", not any(isinstance(r, BaseException) for r in both),
                       repr(both)[:80])

        async def failing() -> int:
            calls.append("bad")
            await asyncio.sleep(0.05)
            raise ValueError("the database said no")

        failed = await asyncio.gather(*(flight.run("bad", failing) for _ in range(20)), return_exceptions=True)
        report.require("20 runs of a failing load: it ran once and every caller got its exception",
                       calls.count("bad") == 1 and all(isinstance(r, ValueError) for r in failed),
                       f"{calls.count('bad')} loader calls; {sorted({type(r).__name__ for r in failed})}")
        again = await flight.run("bad", lambda: query("recovered", 0))
        report.require("a failure is not kept: the next run loads again", isinstance(again, int), repr(again))
    except LearnerError:
        raise
    except Exception as exc:  # the learner's class failed outside call_learner: a finding, not a traceback
        report.require("your class runs without an error", False, f"{type(exc).__name__}: {exc}")
    finally:
        await pool.close()
    return report

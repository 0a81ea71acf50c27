"""The product endpoints' logic: cached reads, transactional writes, exact tag invalidation.

:class:`ProductService` is framework-free (the Nexios handlers in :mod:`perf.api.routes`
only parse and serialise), so each ``mode`` switch is visible in one place:

* reads go through :class:`~perf.cache.multilevel.MultiLevelCache` when ``mode.cache``
  (key per product / per page). A product is tagged ``product:<id>``; a list page is
  tagged with its membership (``list:all`` or ``list:category:<c>``: which products,
  in which order, how many) *and* ``product:<id>`` for every product on it; a list's
  total is cached on its own (``count:c<c>``, membership tag only);
* the SQL is :mod:`perf.db.queries` (JOIN or N+1 per ``mode.join``, keyset or OFFSET per
  ``mode.keyset``); this module writes SQL only for INSERT/UPDATE/DELETE;
* every write invalidates exactly the tags it changed: announced with PostgreSQL ``NOTIFY``
  inside its transaction (:mod:`perf.cache.pg_invalidation`: it reaches every worker if and
  only if the write commits, Redis up or down), then in Redis after the commit; the write
  answers once every other worker has acknowledged that it dropped its copies (up to 1 s),
  so a read after a write's 2xx is fresh in every worker. Each write is one transaction run by
  :meth:`~perf.api.database.Database.write`: cut off by a restart, it is answered as done if it
  committed and run again if not, and its after-commit steps run either way;
  A change to a product's fields (a new price) changes only the pages that show it:
  ``product:<id>``. Creating or deleting a product, or moving it to another category,
  changes membership: the list tags too. (Tagging pages by membership alone dropped every
  page of a category on each price change: 68% hits instead of ~90% at 5% writes.)
* list keys hold only what changes the answer: with a keyset cursor (``after``) the page
  number is echoed but does not choose the items, so it is not in the key; an OFFSET page
  past the last one is answered from the cached total without caching the empty page. A
  client cannot grow the cache by varying ``page``;
* mode ``baseline`` (``syllabus`` with ``cache`` off) reads through the seed's cache
  instead (:class:`~perf.api.seed_cache.SeedCache`, stale list pages after a write
  included) and runs a list page's count and page on one connection, as the syllabus does.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from perf.api.database import Database
from perf.api.errors import ApiError
from perf.api.seed_cache import SeedCache
from perf.api.settings import ApiMode
from perf.api.timing import CACHE_SOURCE, current_timings, set_cache_status
from perf.api.validation import Paging
from perf.cache.multilevel import MultiLevelCache, Tags
from perf.cache.pg_invalidation import PgInvalidationBus, Sent
from perf.db import queries

_LIST_IDS = "SELECT id FROM products {where} ORDER BY id LIMIT $1 OFFSET $2"
_INSERT = ("INSERT INTO products (category_id, name, price, description) VALUES ($1, $2, $3, $4) "
           "RETURNING id")
_INSERT_IMAGES = ("INSERT INTO product_images (product_id, url, position) "
                  "SELECT $1, url, ord - 1 FROM unnest($2::text[]) WITH ORDINALITY AS t(url, ord)")
_UPDATABLE = ("name", "price", "category_id", "description")

#: What a write's transaction hands to its after-commit steps: the row as committed, the tags it
#: changed, its NOTIFY (None without the PostgreSQL bus).
_Written = tuple[dict[str, Any], list[str], Sent | None]


async def _written(conn: asyncpg.Connection, product_id: int) -> dict[str, Any]:
    """The product this transaction just wrote (it exists: the row is locked or new)."""
    row = await queries.get_product(conn, product_id)
    if row is None:
        raise RuntimeError(f"product {product_id} vanished inside its own transaction")
    return row


def _sent_xid(written: tuple[Any, ...]) -> int | None:
    """The transaction id the write's NOTIFY selected (:class:`Sent`, last of ``written``): with the
    PostgreSQL bus, :meth:`Database.write` needs no statement of its own to learn it."""
    sent: Sent | None = written[-1]
    return sent.xid if sent is not None else None


def to_json(product: dict[str, Any]) -> dict[str, Any]:
    """A product row as JSON-ready values: ``price`` a string with 2 decimals, ``created_at`` ISO 8601."""
    out = dict(product)
    if "price" in out:
        out["price"] = f"{out['price']:.2f}"
    if out.get("created_at") is not None:
        out["created_at"] = out["created_at"].isoformat()
    return out


class ProductService:
    """Product reads and writes for the API under ``mode`` (cache may be None: no caching)."""

    def __init__(self, db: Database, cache: MultiLevelCache | None, mode: ApiMode, *, ttl: float = 300.0,
                 seed_cache: SeedCache | None = None, bus: PgInvalidationBus | None = None) -> None:
        self.db = db
        self.cache = cache if mode.cache else None
        self.bus = bus if self.cache is not None else None
        self.seed_cache = seed_cache if not mode.cache else None
        self.mode = mode
        self.ttl = ttl

    async def _cached(self, key: str, tags: Tags, loader: Callable[[], Awaitable[Any]], seed_key: str = "") -> Any:
        if self.seed_cache is not None:
            value, hit = await self.seed_cache.fetch(seed_key, loader)
            set_cache_status("hit-l2" if hit else "miss")  # the seed caches in Redis only
            return value
        if self.cache is None:
            set_cache_status("bypass")
            return await loader()
        timings = current_timings()
        db_before = timings.db if timings else 0.0
        started = time.perf_counter()
        result = await self.cache.fetch(key, loader, ttl=self.ttl, tags=tags)
        if timings is not None:  # cache time excludes the loader's own database time
            timings.cache += max(time.perf_counter() - started - (timings.db - db_before), 0.0)
        set_cache_status(CACHE_SOURCE[result.source])
        return result.value

    # reads --------------------------------------------------------------------------------
    async def get(self, product_id: int) -> dict[str, Any]:
        """One product with category name and image URLs; 404 if there is none."""
        async def query(conn: asyncpg.Connection) -> dict[str, Any] | None:
            if self.mode.join:
                return await queries.get_product(conn, product_id)
            rows = await queries.get_products_n_plus_one(conn, [product_id])
            return rows[0] if rows else None

        async def load() -> dict[str, Any]:
            row = await self.db.read(query)
            if row is None:
                raise ApiError(404, f"no product with id={product_id}")
            return to_json(row)

        seed_key = self.seed_cache.product_key(product_id) if self.seed_cache else ""
        product: dict[str, Any] = await self._cached(f"product:{product_id}", [f"product:{product_id}"], load,
                                                     seed_key)
        return product

    async def list(self, paging: Paging) -> dict[str, Any]:
        """A page: items, total, page, per_page, pages (and ``next_after`` for keyset paging)."""
        membership = "list:all" if paging.category is None else f"list:category:{paging.category}"
        after = paging.after if self.mode.keyset else None
        if self.seed_cache is not None:
            seed_key = self.seed_cache.list_key(paging.category, paging.page, paging.per_page)
            seeded: dict[str, Any] = await self._cached("", (), lambda: self._load_list(paging, after, membership),
                                                        seed_key)
            return seeded
        if after is None and paging.page > 1 and self.cache is not None:
            counted = await self.cache.fetch(f"count:c{paging.category}", lambda: self._count(paging.category),
                                             ttl=self.ttl, tags=[membership])
            if (paging.page - 1) * paging.per_page >= counted.value:  # past the last page: nothing to cache
                set_cache_status(CACHE_SOURCE[counted.source])
                return self._page(paging, [], counted.value)
        # the key names what chooses the items: with a cursor, not the page number (only echoed)
        key = (f"list:c{paging.category}:n{paging.per_page}:a{after}" if after is not None
               else f"list:c{paging.category}:p{paging.page}:n{paging.per_page}")

        def tags(loaded: dict[str, Any]) -> builtins.list[str]:
            return [membership, *(f"product:{item['id']}" for item in loaded["items"])]

        page: dict[str, Any] = await self._cached(key, tags, lambda: self._load_list(paging, after, membership))
        if after is not None:  # the cached page is the same for every `page`: echo this request's
            page = {**page, "page": paging.page}
        return page

    def _page(self, paging: Paging, items: builtins.list[dict[str, Any]], total: int) -> dict[str, Any]:
        data = {"items": [to_json(i) for i in items], "total": total, "page": paging.page,
                "per_page": paging.per_page, "pages": math.ceil(total / paging.per_page)}
        if self.mode.keyset:
            data["next_after"] = items[-1]["id"] if len(items) == paging.per_page else None
        return data

    async def _total(self, category: int | None, membership: str) -> int:
        """The list's total, cached apart under the membership tag (it changes only when membership does)."""
        assert self.cache is not None
        total: int = (await self.cache.fetch(f"count:c{category}", lambda: self._count(category),
                                             ttl=self.ttl, tags=[membership])).value
        return total

    async def _load_list(self, paging: Paging, after: int | None, membership: str) -> dict[str, Any]:
        if self.cache is not None:
            # The total changes only when membership does (not on a new price): cached on its own under
            # the membership tag, so a page that a price change dropped reloads with one query, not two.
            total = await self._total(paging.category, membership)
            items = await self.db.read(lambda conn: self._page_items(conn, paging, after))
        else:  # one connection, count then page, as the seed does (two in parallel cost more CPU per page)
            async def count_and_page(conn: asyncpg.Connection) -> tuple[int, builtins.list[dict[str, Any]]]:
                return (await queries.count_products(conn, category_id=paging.category),
                        await self._page_items(conn, paging, after))

            total, items = await self.db.read(count_and_page)
        return self._page(paging, items, total)

    async def _count(self, category: int | None) -> int:
        return await self.db.read(lambda conn: queries.count_products(conn, category_id=category))

    async def _page_items(self, conn: asyncpg.Connection, paging: Paging,
                          after: int | None) -> builtins.list[dict[str, Any]]:
        offset = (paging.page - 1) * paging.per_page
        if not self.mode.join:  # the seed's way: ids, then category and images product by product
            where = "" if paging.category is None else "WHERE category_id = $3"
            args = [paging.per_page, offset] + ([] if paging.category is None else [paging.category])
            ids = [r["id"] for r in await conn.fetch(_LIST_IDS.format(where=where), *args)]
            rows = await queries.get_products_n_plus_one(conn, ids)
            return [{k: v for k, v in r.items() if k != "image_urls"} for r in rows]
        if after is not None:
            result = await queries.list_products_keyset(conn, after_id=after, limit=paging.per_page,
                                                         category_id=paging.category)
        else:
            result = await queries.list_products_offset(conn, offset=offset, limit=paging.per_page,
                                                         category_id=paging.category)
        return result.items

    # writes -------------------------------------------------------------------------------
    def _tags(self, product_id: int, *categories: int) -> builtins.list[str]:
        """What a write changed: the product (and every page showing it); with ``categories``, membership too."""
        tags = {f"product:{product_id}"}
        if categories:
            tags |= {"list:all", *(f"list:category:{c}" for c in categories)}
        return sorted(tags)

    async def _announce(self, conn: asyncpg.Connection, tags: builtins.list[str]) -> Sent | None:
        """Inside the write's transaction: NOTIFY every worker of ``tags`` (delivered only if it commits)."""
        return await self.bus.notify(conn, tags) if self.bus is not None else None

    async def _invalidate(self, product_id: int, tags: builtins.list[str], sent: Sent | None) -> None:
        """After the commit: drop ``tags`` here and in Redis, then wait until every other worker
        has applied the write's notification (``sent``): their L1 copies are gone.

        Also after a commit whose answer a restart cut off (:meth:`Database.write` found it
        committed): its NOTIFY went out at the commit, but Redis and this worker's L1 are not yet
        invalidated, so this runs the same. A peer whose listening connection the restart cut too
        may never acknowledge (the message or its acknowledgement was lost), and the wait for it
        ends at the timeout: it clears its L1 when it listens again (``L1Coherence.bus`` on a
        resumed bus, via ``InvalidationRelay.bus_state``), and until then trusts L1 only while it
        hears Redis pub/sub, which carries this write's invalidation too.
        """
        if self.seed_cache is not None:
            await self.seed_cache.invalidate(product_id)
        if self.cache is not None:
            await self.cache.invalidate_tags(*tags)
            if self.bus is not None and sent is not None:
                await self.bus.acknowledged(sent)

    @staticmethod
    async def _check_category(conn: asyncpg.Connection, category_id: int) -> None:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1)", category_id):
            raise ApiError(409, f"no category with category_id={category_id}: create it first or pick another",
                           errors=[{"field": "category_id", "message": "no such category", "value": category_id}])

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Insert a product and its images in one transaction; return it as GET would."""
        async def insert(conn: asyncpg.Connection) -> _Written:
            await self._check_category(conn, fields["category_id"])
            product_id = await conn.fetchval(_INSERT, fields["category_id"], fields["name"], fields["price"],
                                             fields.get("description"))
            if fields.get("image_urls"):
                await conn.execute(_INSERT_IMAGES, product_id, fields["image_urls"])
            row = await _written(conn, product_id)
            tags = self._tags(product_id, fields["category_id"])
            return row, tags, await self._announce(conn, tags)

        row, tags, sent = await self.db.write(insert, xid_of=_sent_xid)
        await self._invalidate(row["id"], tags, sent)
        return to_json(row)

    async def update(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Change some fields (and optionally replace the images) in one transaction; 404 if absent."""
        async def change(conn: asyncpg.Connection) -> _Written:
            old_category = await conn.fetchval("SELECT category_id FROM products WHERE id = $1 FOR UPDATE",
                                               product_id)
            if old_category is None:
                raise ApiError(404, f"no product with id={product_id}")
            if "category_id" in fields and fields["category_id"] != old_category:
                await self._check_category(conn, fields["category_id"])
            columns = [c for c in _UPDATABLE if c in fields]  # names from a constant list, values bound
            if columns:
                assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
                await conn.execute(f"UPDATE products SET {assignments} WHERE id = $1", product_id,
                                   *(fields[c] for c in columns))
            if "image_urls" in fields:
                await conn.execute("DELETE FROM product_images WHERE product_id = $1", product_id)
                if fields["image_urls"]:
                    await conn.execute(_INSERT_IMAGES, product_id, fields["image_urls"])
            row = await _written(conn, product_id)
            if row["category_id"] == old_category:
                tags = self._tags(product_id)  # same pages, one changed row
            else:
                tags = self._tags(product_id, old_category, row["category_id"])  # moved: membership changed
            return row, tags, await self._announce(conn, tags)

        row, tags, sent = await self.db.write(change, xid_of=_sent_xid)
        await self._invalidate(product_id, tags, sent)
        return to_json(row)

    async def delete(self, product_id: int) -> None:
        """Delete a product (its images cascade); 404 if absent."""
        async def remove(conn: asyncpg.Connection) -> tuple[builtins.list[str], Sent | None]:
            category = await conn.fetchval("DELETE FROM products WHERE id = $1 RETURNING category_id", product_id)
            if category is None:
                raise ApiError(404, f"no product with id={product_id}")
            tags = self._tags(product_id, category)
            return tags, await self._announce(conn, tags)

        tags, sent = await self.db.write(remove, xid_of=_sent_xid)
        await self._invalidate(product_id, tags, sent)

"""Coherence of perf.cache under races and outages (issue 26), against real Redis and PostgreSQL.

Two MultiLevelCache instances in one test stand for two worker processes: they share
nothing but Redis (and PostgreSQL), each with its own L1. Every race is forced with events,
so each test is deterministic and takes well under a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from perf.cache.coherence import L1Coherence, value_digest
from perf.cache.multilevel import MultiLevelCache
from perf.cache.pg_invalidation import PgInvalidationBus
from perf.services.process import free_port


class Row:
    """A "database row" whose read can be held between reading and returning (the race window)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.read = asyncio.Event()  # set once the loader has read the value
        self.go_on = asyncio.Event()  # the loader returns what it read when this is set
        self.go_on.set()

    def hold(self) -> None:
        self.read.clear()
        self.go_on.clear()

    async def load(self) -> Any:
        seen = self.value
        self.read.set()
        await self.go_on.wait()
        return seen


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture
async def pair(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[MultiLevelCache, MultiLevelCache]]:
    namespace = redis_prefix.rstrip(":")
    async with MultiLevelCache(redis_url, namespace=namespace) as reader, \
            MultiLevelCache(redis_url, namespace=namespace) as writer:
        yield reader, writer


@pytest.mark.parametrize("tagging", ["fixed", "computed"])
async def test_a_load_overtaken_by_a_write_stores_nothing_anywhere(pair: tuple[MultiLevelCache, MultiLevelCache],
                                                                   tagging: str) -> None:
    """The reader loads the old row; the writer commits and invalidates; the reader's store comes last.
    Before issue 26 that store won, and the old price stayed in Redis for the whole TTL."""
    reader, writer = pair
    row = Row({"id": 1, "price": 10})
    tags: Any = ["product:1"] if tagging == "fixed" else (lambda page: [f"product:{page['id']}"])
    await writer.set("other", "shares the tag", tags=["product:1"])  # the tag's version exists before the load
    row.hold()
    read = asyncio.create_task(reader.fetch("product:1", row.load, tags=tags))
    await row.read.wait()  # the reader has the old row in hand
    row.value = {"id": 1, "price": 20}  # the write commits...
    await writer.invalidate_tags("product:1")  # ...and invalidates
    row.go_on.set()
    assert (await read).value["price"] == 10  # it began before the write: answering the old row is allowed
    assert reader.stats.counts["stores_refused"] == 1
    assert reader.l1 is not None and len(reader.l1) == 0  # and it kept no copy
    for cache in (writer, reader):
        assert (await cache.fetch("product:1", row.load, tags=tags)).value["price"] == 20


async def test_a_delete_takes_the_lease_of_a_load_in_flight(pair: tuple[MultiLevelCache, MultiLevelCache]) -> None:
    reader, writer = pair
    row = Row("old")
    row.hold()
    read = asyncio.create_task(reader.fetch("k", row.load))
    await row.read.wait()
    row.value = "new"
    await writer.delete("k")
    row.go_on.set()
    await read
    assert (await writer.get("k")).found is False  # the old value was not stored
    assert (await writer.fetch("k", row.load)).value == "new"


async def test_twenty_rounds_of_concurrent_reads_and_writes_leave_nothing_stale(
        pair: tuple[MultiLevelCache, MultiLevelCache]) -> None:
    """Both caches read 10 keys (tagged per item and as a page) while both write them, 20 rounds; after
    each round settles, every read from either cache equals the "database"."""
    reader, writer = pair
    db = {i: 0 for i in range(10)}

    async def load_item(i: int) -> int:
        value = db[i]
        await asyncio.sleep(0.001 * (i % 3))  # loads of different lengths, so writes land inside them
        return value

    async def load_page() -> list[int]:
        snapshot = [db[i] for i in range(10)]
        await asyncio.sleep(0.002)
        return snapshot

    def page_tags(page: list[int]) -> list[str]:
        return ["list", *(f"item:{i}" for i in range(len(page)))]

    async def write(cache: MultiLevelCache, i: int, value: int) -> None:
        db[i] = value
        await cache.invalidate_tags(f"item:{i}")

    stale = 0
    for round_ in range(20):
        ops: list[Any] = []
        for n in range(40):
            cache = (reader, writer)[n % 2]
            i = (n * 7 + round_) % 10
            ops.append(cache.fetch(f"item:{i}", lambda i=i: load_item(i), tags=[f"item:{i}"]))
            ops.append(cache.fetch("page", load_page, tags=page_tags))
            if n % 4 == 0:
                ops.append(write((writer, reader)[n % 8 == 0], i, round_ * 100 + n))
        await asyncio.gather(*ops)
        await asyncio.sleep(0.02)  # the round settles: every pub/sub message delivered
        for cache in (reader, writer):
            page = (await cache.fetch("page", load_page, tags=page_tags)).value
            items = [(await cache.fetch(f"item:{i}", lambda i=i: load_item(i), tags=[f"item:{i}"])).value
                     for i in range(10)]
            stale += sum(page[i] != db[i] for i in range(10)) + sum(items[i] != db[i] for i in range(10))
    assert stale == 0
    assert reader.stats.counts["stores_refused"] + writer.stats.counts["stores_refused"] > 0  # the race did happen


async def test_without_an_invalidation_bus_l1_is_neither_read_nor_filled() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cache = await MultiLevelCache(dead, namespace="deaf", redis_timeout=0.2, retry_interval=0.2).start(timeout=0.2)
    async with cache:
        assert not cache.coherence.hearing
        assert [(await cache.fetch("k", Row(1).load)).source for _ in range(2)] == ["bypass", "bypass"]
        assert cache.l1 is not None and len(cache.l1) == 0


def test_coherence_rules() -> None:
    c = L1Coherence(memory=2)
    start = c.epoch
    c.invalidated(["a"])
    assert not c.fresh_since(start, ["a"]) and c.fresh_since(start, ["b"]) and c.fresh_since(c.epoch, ["a"])
    c.invalidated(["b"])
    c.invalidated(["c"])  # "a" is forgotten: a fill older than it is refused, whatever it carries
    assert not c.fresh_since(start, ["z"])
    c.hold(["p"])
    assert not c.fresh_since(c.epoch, ["p"])
    c.release(["p"])
    assert c.fresh_since(c.epoch, ["p"])
    assert c.hearing  # no bus registered: a cache alone in its process
    assert c.bus("redis", False) and not c.hearing  # registering a bus that is down: deaf, clear
    assert not c.bus("postgres", True) and c.hearing  # heard from now on; nothing was filled while deaf
    assert c.bus("redis", True)  # a bus coming back missed what was sent meanwhile: clear
    assert not c.bus("redis", False) and c.hearing  # still heard through PostgreSQL
    before = c.epoch
    assert c.bus("postgres", False) and not c.fresh_since(before, [])  # the last bus lost: clear
    with pytest.raises(ValueError, match="memory=0"):
        L1Coherence(memory=0)


def test_a_read_overtaken_by_the_set_that_wrote_its_value_is_served() -> None:
    c = L1Coherence()
    start = c.epoch
    c.invalidated(["k"], written={"k": value_digest(b"v2")})  # another process set k to v2
    assert c.fresh_since(start, ["k"], digest=value_digest(b"v2"))  # the read returned v2: current
    assert not c.fresh_since(start, ["k"], digest=value_digest(b"v1"))  # it returned what v2 replaced
    assert not c.fresh_since(start, ["k"])  # nothing known of what it returned
    c.invalidated(["k"])  # a delete after the set: the digest no longer vouches for anything
    assert not c.fresh_since(start, ["k"], digest=value_digest(b"v2"))
    c.invalidated(["t"], written={"t": value_digest(b"x")})
    assert not c.fresh_since(start, ["k", "t"], digest=value_digest(b"x"))  # k's own invalidation still counts


async def test_a_read_racing_another_process_s_set_is_served_not_reloaded(redis_url: str, redis_prefix: str) -> None:
    """The other process's set message arrives while this one reads the key: the value read is the one that
    set wrote, so it is served from L2 (it used to be refused and reloaded: a spurious miss)."""
    namespace = redis_prefix.rstrip(":")
    async with MultiLevelCache(redis_url, namespace=namespace) as reader, \
            MultiLevelCache(redis_url, namespace=namespace) as writer:
        await writer.set("k", "v1")
        for round_ in range(20):
            start = reader.coherence.epoch
            await writer.set("k", f"v{round_}")
            deadline = asyncio.get_running_loop().time() + 2
            while reader.coherence.epoch == start and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.005)  # the set's message has arrived: it overtook any read begun at start
            assert reader.l2 is not None
            data = await reader.l2.get_raw(reader._key("k"))
            assert data is not None
            entry = await reader._decode_l2(reader._key("k"), data, 0.0, start, count=False)
            assert entry is not None and entry.value == f"v{round_}"


# the PostgreSQL bus ---------------------------------------------------------------------------

@pytest.fixture
async def pg_pair(database_url: str, redis_prefix: str) -> AsyncIterator[list[tuple[MultiLevelCache,
                                                                                   PgInvalidationBus]]]:
    """Two "workers" whose Redis is unreachable, each listening on PostgreSQL."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    namespace = redis_prefix.rstrip(":")
    opened = []
    try:
        for _ in range(2):
            cache = await MultiLevelCache(dead, namespace=namespace, redis_timeout=0.2,
                                          retry_interval=5).start(timeout=0.2)
            bus = await PgInvalidationBus(database_url, cache, reconnect_delay=0.1).start()
            opened.append((cache, bus))
        yield opened
    finally:
        for cache, bus in opened:
            await bus.close()
            await cache.close()


async def test_notify_in_the_write_transaction_reaches_the_other_worker_with_redis_down(
        pg_pair: list[tuple[MultiLevelCache, PgInvalidationBus]], database_url: str) -> None:
    (cache_a, bus_a), (cache_b, bus_b) = pg_pair
    row = Row(10)
    for cache in (cache_a, cache_b):
        assert cache.coherence.hearing  # through PostgreSQL
        await cache.fetch("p:1", row.load, tags=["product:1"])
        assert (await cache.fetch("p:1", row.load, tags=["product:1"])).source == "l1"
    conn = await asyncpg.connect(database_url)
    try:
        rolled_back = conn.transaction()
        await rolled_back.start()
        await bus_a.notify(conn, ["product:2"])
        await rolled_back.rollback()  # a write that does not commit announces nothing
        async with conn.transaction():
            row.value = 20
            sent = await bus_a.notify(conn, ["product:1"])
    finally:
        await conn.close()
    await cache_a.invalidate_tags("product:1")
    assert sent.peers == {bus_b.origin}  # PostgreSQL named the other listener
    assert await bus_a.acknowledged(sent)  # b applied it: no waiting for its L1 to empty
    assert cache_b.l1 is not None and len(cache_b.l1) == 0
    assert cache_b.stats.counts["invalidations_received"] == 1  # product:1 only
    assert (await cache_b.fetch("p:1", row.load, tags=["product:1"])).value == 20
    assert await until(lambda: cache_b.pending.tags == {"product:1"})  # replayed into Redis before it is read


async def test_a_write_waits_for_every_listener_to_apply_it_not_just_for_delivery(
        pg_pair: list[tuple[MultiLevelCache, PgInvalidationBus]], database_url: str) -> None:
    """Delivered is not applied: a listener that received the message but has not answered (here
    a raw connection standing for a worker whose event loop is busy) holds up the write until it
    acknowledges, and a listener that never answers is given up after the timeout."""
    (cache_a, bus_a), _ = pg_pair
    slow_origin = "5" * 16
    slow = await asyncpg.connect(database_url, server_settings={"application_name": f"{bus_a.channel}:{slow_origin}"})
    heard: asyncio.Queue[str] = asyncio.Queue()
    await slow.add_listener(bus_a.channel, lambda *args: heard.put_nowait(args[3]))
    writer = await asyncpg.connect(database_url)
    try:
        async with writer.transaction():
            sent = await bus_a.notify(writer, ["product:1"])
        assert slow_origin in sent.peers and len(sent.peers) == 2  # the other bus and the slow one
        waiting = asyncio.ensure_future(bus_a.acknowledged(sent, timeout=10))
        await heard.get()  # delivered to the slow listener ...
        await asyncio.sleep(0.3)
        assert not waiting.done()  # ... but not applied: the write still waits
        await slow.execute("SELECT pg_notify($1, $2)", bus_a.channel,
                           f'{{"acks": [["{bus_a.origin}", {sent.id}]], "from": "{slow_origin}"}}')
        assert await asyncio.wait_for(waiting, 5)
        async with writer.transaction():
            sent = await bus_a.notify(writer, ["product:2"])
        started = time.perf_counter()
        assert not await bus_a.acknowledged(sent, timeout=0.3)  # the slow one never answers this one
        assert time.perf_counter() - started >= 0.3
    finally:
        await writer.close()
        await slow.close()


async def test_losing_the_listener_without_redis_empties_l1(
        pg_pair: list[tuple[MultiLevelCache, PgInvalidationBus]], database_url: str) -> None:
    (cache, bus), _ = pg_pair
    await cache.fetch("p:1", Row(1).load)
    assert cache.l1 is not None and len(cache.l1) == 1
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                           bus.application_name)
    finally:
        await conn.close()
    assert await until(lambda: not cache.coherence.hearing or len(cache.l1) == 0)  # type: ignore[arg-type]
    assert len(cache.l1) == 0
    assert await until(lambda: bus.connected.is_set())  # back within reconnect_delay
    assert cache.coherence.hearing

"""Issue 26's reproductions against the API: two worker processes (two ApiServers on one schema),
real PostgreSQL and Valkey. After a write's 2xx no worker returns the old value, with Redis
killed, frozen, or out of the writer's reach; a burst of reads and writes leaves nothing
stale; a flood of list URLs does not grow the cache."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.services import EmbeddedRedis
from perf.services.process import free_port
from tests._api_helpers import KEEPALIVE, drop_namespace, unique_name

PRODUCTS = 30


def _rss_mb(pid: int) -> float:
    import psutil  # portable (macOS has no /proc)

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def _prices(client: httpx.Client, ids: range) -> dict[int, str]:
    listed = client.get("/products", params={"per_page": 100}).json()["items"]
    return {p["id"]: p["price"] for p in listed if p["id"] in ids}


def _assert_fresh(clients: list[httpx.Client], pid: int, price: str) -> None:
    for client in clients:
        item = client.get(f"/products/{pid}")
        assert item.status_code == 200 and item.json()["price"] == price, (client.base_url, item.headers, item.text)
        assert _prices(client, range(pid, pid + 1))[pid] == price, client.base_url


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    name = unique_name("t_api_coh")
    try:
        yield name
    finally:
        drop_namespace(database_url, name, None, name)


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_redis_killed_or_frozen_no_worker_returns_the_old_value(tmp_path: Path, database_url: str, schema: str,
                                                                fault: str) -> None:
    """Issue 26 finding 2: worker B served the old price for 29.5 s after a PATCH on A with Valkey killed."""
    with EmbeddedRedis(tmp_path / "redis") as valkey:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=valkey.url, schema=schema,
                                   products=PRODUCTS)) as one, \
                ApiServer(ApiSettings(database_url=database_url, redis_url=valkey.url, schema=schema)) as two, \
                httpx.Client(base_url=one.url, headers=one.auth_headers, timeout=10, limits=KEEPALIVE) as a, \
                httpx.Client(base_url=two.url, timeout=10, limits=KEEPALIVE) as b:
            for client in (a, b):  # cached in both workers' L1
                for pid in range(1, 6):
                    client.get(f"/products/{pid}")
                    assert client.get(f"/products/{pid}").headers["x-cache"] == "hit-l1"
            valkey_pid = valkey.pid
            assert valkey_pid is not None
            os.kill(valkey_pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
            try:
                for n, pid in enumerate(range(1, 6)):
                    price = f"{n + 41}.00"
                    assert a.patch(f"/products/{pid}", json={"price": price}).status_code == 200
                    _assert_fresh([b, a], pid, price)  # at once, from the other worker first
                assert b.get("/products/2").headers["x-cache"] in ("hit-l1", "bypass")  # L1 still serves
            finally:
                if fault == "frozen":
                    os.kill(valkey_pid, signal.SIGCONT)  # Valkey resumes with the old entries in memory
            if fault == "killed":
                valkey.stop()
                valkey.start()
            deadline = time.monotonic() + 10
            while b.get("/products/20").headers["x-cache"] == "bypass" and time.monotonic() < deadline:
                time.sleep(0.1)
            for n, pid in enumerate(range(1, 6)):
                _assert_fresh([b, a], pid, f"{n + 41}.00")  # Redis back: nothing old comes out of it


def test_a_writer_that_cannot_reach_redis_still_invalidates_the_others(tmp_path: Path, database_url: str,
                                                                        redis_url: str, schema: str) -> None:
    """Issue 26 finding 3 (second half): a worker whose Redis pool was exhausted failed open, and the
    others kept serving what it changed. Here the writer's Redis is a dead port, the reader's is up."""
    try:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                   products=PRODUCTS)) as up, \
                ApiServer(ApiSettings(database_url=database_url, redis_url=dead, schema=schema,
                                      cache_namespace=schema)) as cut_off, \
                httpx.Client(base_url=cut_off.url, headers=cut_off.auth_headers, timeout=10,
                             limits=KEEPALIVE) as writer, \
                httpx.Client(base_url=up.url, timeout=10, limits=KEEPALIVE) as reader:
            for pid in range(1, 6):
                reader.get(f"/products/{pid}")
                assert reader.get(f"/products/{pid}").headers["x-cache"] == "hit-l1"
            for n, pid in enumerate(range(1, 6)):
                price = f"{n + 7}.50"
                assert writer.patch(f"/products/{pid}", json={"price": price}).status_code == 200
                _assert_fresh([reader], pid, price)
            with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema)) as third, \
                    httpx.Client(base_url=third.url, timeout=10, limits=KEEPALIVE) as fresh:
                for n, pid in enumerate(range(1, 6)):  # what is in Redis is right too
                    item = fresh.get(f"/products/{pid}")
                    assert item.json()["price"] == f"{n + 7}.50", item.headers
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


@pytest.mark.slow
def test_twenty_bursts_of_writes_and_reads_on_two_workers_leave_nothing_stale(database_url: str, redis_url: str,
                                                                               schema: str) -> None:
    """Issue 26 finding 3: PATCHes mixed with GETs on the same products from two workers; after each
    burst settles, both workers' item and list reads equal PostgreSQL's rows."""
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                   products=PRODUCTS)) as one, \
                ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema)) as two:
            stale = asyncio.run(_bursts([one, two], database_url, schema, rounds=20))
        assert stale == [], stale[:10]
        print("\nfigure: 20 bursts of PATCH+GET on two workers: 0 stale item or list reads after each")
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


async def _bursts(servers: list[ApiServer], database_url: str, schema: str,
                  rounds: int) -> list[tuple[int, str, int]]:
    stale: list[tuple[int, str, int]] = []
    clients = [httpx.AsyncClient(base_url=s.url, headers=s.auth_headers, timeout=20, limits=KEEPALIVE)
               for s in servers]
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        for round_ in range(rounds):
            ops = []
            for n in range(24):
                client = clients[n % 2]
                pid = 1 + (n * 7 + round_) % 5
                if n % 3 == 0:
                    ops.append(client.patch(f"/products/{pid}", json={"price": f"{round_ * 100 + n}.00"}))
                ops.append(client.get(f"/products/{pid}"))
                if n % 5 == 0:
                    ops.append(client.get("/products", params={"per_page": 20}))
            answers = await asyncio.gather(*ops)
            assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
            await asyncio.sleep(0.05)  # the burst settles: every invalidation delivered
            truth = {r["id"]: f"{r['price']:.2f}" for r in await conn.fetch("SELECT id, price FROM products "
                                                                           "WHERE id <= 5")}
            for worker, client in enumerate(clients):
                listed = {p["id"]: p["price"] for p in
                          (await client.get("/products", params={"per_page": 20})).json()["items"]}
                for pid, price in truth.items():
                    item = (await client.get(f"/products/{pid}")).json()["price"]
                    if item != price or listed[pid] != price:
                        stale.append((round_, f"worker {worker}", pid))
    finally:
        await conn.close()
        for client in clients:
            await client.aclose()
    return stale


@pytest.mark.slow
def test_a_flood_of_list_urls_does_not_grow_the_cache(tmp_path: Path, database_url: str, schema: str) -> None:
    """Issue 26 finding 4: `?after=0&per_page=100&page=N` for many N took each worker from 119 MB to
    773 MB and Valkey to 981 MB. The page number is echoed, not part of the key; a page past the end
    is not cached; Valkey runs with maxmemory."""
    with EmbeddedRedis(tmp_path / "redis", maxmemory="64mb") as valkey:
        config = redis.Redis.from_url(valkey.url)
        try:
            assert config.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
            assert config.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
            with ApiServer(ApiSettings(database_url=database_url, redis_url=valkey.url, schema=schema,
                                       products=300)) as api, \
                    httpx.Client(base_url=api.url, timeout=10, limits=KEEPALIVE) as client:
                worker = client.get("/health").json()["pid"]
                first = client.get("/products", params={"after": 0, "per_page": 100, "page": 1}).json()
                client.get("/products", params={"per_page": 100, "page": 2})
                keys, rss = config.dbsize(), _rss_mb(worker)
                for page in range(2, 602):
                    flooded = client.get("/products", params={"after": 0, "per_page": 100, "page": page})
                    assert flooded.status_code == 200 and flooded.json()["page"] == page
                    assert flooded.json()["items"] == first["items"]
                    past_end = client.get("/products", params={"per_page": 100, "page": page + 2})
                    assert past_end.status_code == 200 and past_end.json()["items"] == []
                assert config.dbsize() == keys  # not one key more
                grown = _rss_mb(worker) - rss
                assert grown < 20, (rss, _rss_mb(worker))  # 1,200 pages of 100 held: ~100 MB
                print(f"\nfigure: 1,200 flooded list URLs: worker RSS {rss:.0f} -> {rss + grown:.0f} MB, "
                      f"Redis keys {keys} -> {config.dbsize()}")
        finally:
            config.close()

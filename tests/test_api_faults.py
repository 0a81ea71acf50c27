"""The API under faults: Redis down, PostgreSQL down, and cache coherence across two server
processes (uploads under faults: tests/test_queue_durable_api.py). Private servers where a fault is injected."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.services import EmbeddedPostgres, EmbeddedRedis
from tests._api_helpers import drop_namespace, unique_name


def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_redis_down_reads_bypass_the_cache_then_recover(tmp_path: Path, database_url: str):
    schema = unique_name("t_api_redis")
    try:
        with EmbeddedRedis(tmp_path / "redis") as redis_server, \
                ApiServer(ApiSettings(database_url=database_url, redis_url=redis_server.url, schema=schema,
                                      products=50)) as api, \
                httpx.Client(base_url=api.url, timeout=10, headers=api.auth_headers) as client:
            assert client.get("/products/1").headers["x-cache"] == "miss"
            assert client.get("/products/1").headers["x-cache"] == "hit-l1"
            redis_server.stop()
            for pid in (2, 3):  # (a repeat may be served from L1: still fresh, see the PATCH below)
                down = client.get(f"/products/{pid}")
                assert down.status_code == 200 and down.json()["id"] == pid
                assert down.headers["x-cache"] == "bypass"
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert health.json()["redis"]["status"] == "down" and "127.0.0.1" not in health.text
            assert client.patch("/products/2", json={"price": 7}).status_code == 200  # writes still work
            assert client.get("/products/2").json()["price"] == "7.00"
            redis_server.start()
            assert _until(lambda: client.get("/products/4").headers["x-cache"] != "bypass")
            assert client.get("/products/2").json()["price"] == "7.00"
            assert client.get("/health").json()["status"] == "ok"
    finally:
        drop_namespace(database_url, schema, None, schema)


def test_postgres_down_is_503_with_retry_after_then_recovers(tmp_path: Path, redis_url: str):
    schema = unique_name("t_api_pg")
    with EmbeddedPostgres(tmp_path / "pg") as pg, \
            ApiServer(ApiSettings(database_url=pg.url, redis_url=redis_url, schema=schema, products=50,
                                  mode="all,-cache", db_timeout=2.0)) as api, \
            httpx.Client(base_url=api.url, timeout=10, headers=api.auth_headers) as client:
        # db_timeout=2: each request below waits that long for PostgreSQL before its 503 (default 10 s)
        assert client.get("/products/1").status_code == 200
        pg.stop()
        for path in ("/products/1", "/products", "/health"):
            down = client.get(path)
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "1" and "Traceback" not in down.text
        pg.start()
        assert _until(lambda: client.get("/products/1").status_code == 200)
        assert client.get("/products").json()["total"] == 50


def test_a_write_in_one_process_is_seen_at_once_by_another(database_url: str, redis_url: str):
    schema = unique_name("t_api_two")
    try:
        common = {"database_url": database_url, "redis_url": redis_url, "schema": schema}
        with ApiServer(ApiSettings(**common, products=20)) as one, ApiServer(ApiSettings(**common)) as two, \
                httpx.Client(base_url=one.url, headers=one.auth_headers) as writer, \
                httpx.Client(base_url=two.url) as reader:
            for price in range(1, 6):
                reader.get("/products/9")
                assert reader.get("/products/9").headers["x-cache"] == "hit-l1"  # cached in process two
                assert writer.patch("/products/9", json={"price": price}).status_code == 200
                assert reader.get("/products/9").json()["price"] == f"{price}.00"
                assert reader.get("/products", params={"per_page": 20}).json()["items"][8]["price"] == f"{price}.00"
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def test_two_uvicorn_workers_serve_the_same_data(database_url: str, redis_url: str):
    schema = unique_name("t_api_workers")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=20),
                       workers=2) as api:
            pids = set()
            for attempt in range(60):
                try:
                    with httpx.Client(base_url=api.url, headers=api.auth_headers) as client:  # a new connection each
                        pids.add(client.get("/health").json()["pid"])
                        if attempt == 0:
                            assert client.patch("/products/3", json={"name": "Shared"}).status_code == 200
                        assert client.get("/products/3").json()["name"] == "Shared"
                except httpx.TransportError as exc:
                    raise AssertionError(f"attempt {attempt}: {exc!r}; server log:\n{api.log()}") from exc
                if len(pids) == 2 and attempt >= 10:
                    break
            assert len(pids) == 2
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def test_granian_serves_the_same_app(database_url: str, redis_url: str):
    schema = unique_name("t_api_granian")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=20),
                       server="granian") as api, httpx.Client(base_url=api.url) as client:
            first = client.get("/products/3")
            assert first.status_code == 200 and first.headers["server"] == "granian"
            assert first.headers["x-cache"] == "miss" and client.get("/products/3").headers["x-cache"] == "hit-l1"
            assert client.post("/products/3").status_code == 405
            assert client.get("/products/3").status_code == 200
            assert client.get("/health").json()["status"] == "ok"  # the lifespan ran
    finally:
        drop_namespace(database_url, schema, redis_url, schema)

"""Modes ``baseline`` (the syllabus' mini-project, its cache bug included) and ``naive`` against real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from tests._api_helpers import drop_namespace, unique_name


@pytest.fixture(scope="module")
def servers(database_url: str, redis_url: str) -> Iterator[tuple[ApiServer, ApiServer]]:
    """A ``baseline`` and a ``naive`` server on one private schema (the naive one never caches)."""
    schema = unique_name("t_api_modes")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=60,
                                   mode="baseline")) as baseline, \
             ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                   mode="naive", cache_namespace=f"{schema}_naive")) as naive:
            yield baseline, naive
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def test_baseline_is_the_syllabus_design_and_serves_the_same_data(servers: tuple[ApiServer, ApiServer]):
    baseline, naive = servers
    with httpx.Client(base_url=baseline.url, timeout=10) as seed, httpx.Client(base_url=naive.url, timeout=10) as raw:
        for path, params in [("/products/7", {}), ("/products", {"category": 3, "per_page": 5}),
                             ("/products", {"page": 2, "per_page": 10})]:
            first, second, fresh = seed.get(path, params=params), seed.get(path, params=params), raw.get(path,
                                                                                                         params=params)
            assert first.status_code == second.status_code == fresh.status_code == 200
            assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit-l2")
            assert first.json() == second.json() == fresh.json()
            assert fresh.headers["x-cache"] == "bypass"
        assert seed.get("/products/999999").status_code == 404
        big = seed.get("/products", params={"per_page": 100}, headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in big.headers  # the seed never registers its compression middleware
        metrics = seed.get("/metrics.json").json()
        assert metrics["name"] == "baseline" and metrics["mode"]["join"] and not metrics["mode"]["cache"]
        assert metrics["db"]["mode"] == "asyncpg.create_pool"
        assert (metrics["db"]["min_size"], metrics["db"]["max_size"]) == (5, 20)  # the seed's Config
        assert metrics["cache"]["kind"] == "seed CacheManager" and metrics["cache"]["hits"] >= 3
        naive_metrics = raw.get("/metrics.json").json()
        assert naive_metrics["cache"] is None and naive_metrics["db"]["mode"] == "connect-per-request"
        assert naive_metrics["db"]["connects"] >= 3


def test_baseline_keeps_the_seeds_stale_list_pages_after_a_patch(servers: tuple[ApiServer, ApiServer]):
    """The seed "invalidates" with ``delete("products:*")``: DEL takes no pattern, so list pages stay stale."""
    baseline, naive = servers
    params = {"category": 2, "per_page": 5}
    with httpx.Client(base_url=baseline.url, timeout=10, headers=baseline.auth_headers) as seed, \
         httpx.Client(base_url=naive.url, timeout=10) as raw:
        page = seed.get("/products", params=params).json()  # cached now
        product = page["items"][0]
        new_price = "1.23" if product["price"] != "1.23" else "4.56"
        patched = seed.patch(f"/products/{product['id']}", json={"price": new_price})
        assert patched.status_code == 200 and patched.json()["price"] == new_price
        detail = seed.get(f"/products/{product['id']}")
        assert detail.json()["price"] == new_price  # the product's own key is deleted: fresh
        stale = seed.get("/products", params=params)
        assert stale.headers["x-cache"] == "hit-l2"
        assert stale.json()["items"][0]["price"] == product["price"] != new_price  # the seed's bug, reproduced
        assert raw.get("/products", params=params).json()["items"][0]["price"] == new_price  # the database


def test_baseline_never_unpickles_what_redis_holds(servers: tuple[ApiServer, ApiServer], redis_url: str,
                                                   tmp_path: Path) -> None:
    """The served seed cache stores JSON: a pickle planted at its key is a miss (reloaded), never code run."""
    import redis as sync_redis

    from perf.cache.demo_pickle import malicious_payload

    baseline, _ = servers
    marker = tmp_path / "ran"
    key = f"{baseline.settings.cache_namespace}:product:11"
    with sync_redis.Redis.from_url(redis_url) as client:
        client.set(key, malicious_payload(marker), ex=60)
        response = httpx.get(f"{baseline.url}/products/11", timeout=10)
        assert response.status_code == 200 and response.json()["id"] == 11
        assert response.headers["x-cache"] == "miss" and not marker.exists()
        assert client.get(key).startswith(b"{")  # overwritten with the JSON the seed's cache stores

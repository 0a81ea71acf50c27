"""The product API against a real uvicorn server, real PostgreSQL and Redis (private schema/namespace)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from tests._api_helpers import drop_namespace, unique_name

PRODUCTS = 120


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_api")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                   products=PRODUCTS, upload_delay=0.01)) as srv:
            yield srv
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, headers=server.auth_headers) as c:
        yield c


def _timing(response: httpx.Response) -> dict[str, float]:
    parts = [p.strip().split(";dur=") for p in response.headers["server-timing"].split(",")]
    return {name: float(value) for name, value in parts}


def test_product_detail_is_cached_and_reports_where_time_went(client: httpx.Client):
    first = client.get("/products/7")
    second = client.get("/products/7")
    assert first.status_code == second.status_code == 200
    body = first.json()
    assert body["id"] == 7 and body["category"].startswith("Category ")
    assert body["image_urls"] == [f"https://img.example.com/p/7/{i}.jpg" for i in range(3)]
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit-l1"
    assert second.json() == body
    timing = _timing(first)
    assert set(timing) == {"db", "cache", "app", "total"}
    assert timing["db"] > 0 and timing["total"] >= timing["db"]
    assert _timing(second)["db"] == 0
    assert first.headers["content-type"] == "application/json"


def test_list_pages_with_total_and_keyset_cursor(client: httpx.Client):
    page2 = client.get("/products", params={"page": 2, "per_page": 10}).json()
    assert (page2["total"], page2["page"], page2["per_page"], page2["pages"]) == (PRODUCTS, 2, 10, 12)
    assert [p["id"] for p in page2["items"]] == list(range(11, 21))
    first = client.get("/products", params={"per_page": 10}).json()
    after = client.get("/products", params={"per_page": 10, "after": first["next_after"]}).json()
    assert after["items"] == page2["items"]
    one_category = client.get("/products", params={"category": 3, "per_page": 100}).json()
    assert one_category["items"] and {p["category_id"] for p in one_category["items"]} == {3}
    assert one_category["total"] == len(one_category["items"])
    assert client.get("/products", params={"page": 999}).json()["items"] == []


def test_create_validates_every_field_and_checks_the_category(client: httpx.Client):
    bad = client.post("/products", json={"name": "", "price": -1, "category_id": "x", "image_urls": "no"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "price", "category_id", "image_urls"}
    total = client.get("/products").json()["total"]
    missing = client.post("/products", json={"name": "Ghost", "price": 1, "category_id": 99999})
    assert missing.status_code == 409 and missing.json()["errors"][0]["field"] == "category_id"
    assert client.get("/products").json()["total"] == total  # nothing half-written


def test_read_after_write_is_never_stale(client: httpx.Client):
    created = client.post("/products", json={"name": "Kettle X", "price": "19.90", "category_id": 2,
                                             "image_urls": ["https://img.example.com/a.jpg"]})
    assert created.status_code == 201
    pid = created.json()["id"]
    assert created.headers["location"] == f"/products/{pid}"
    total = client.get("/products", params={"category": 2, "per_page": 100}).json()["total"]
    for _ in range(2):  # second read is a cache hit
        assert client.get(f"/products/{pid}").json()["price"] == "19.90"
    patched = client.patch(f"/products/{pid}", json={"price": 21, "image_urls": [], "category_id": 4})
    assert patched.status_code == 200 and patched.json()["price"] == "21.00"
    fresh = client.get(f"/products/{pid}").json()
    assert (fresh["price"], fresh["image_urls"], fresh["category_id"]) == ("21.00", [], 4)
    assert client.get("/products", params={"category": 2, "per_page": 100}).json()["total"] == total - 1
    page = client.get("/products", params={"category": 4, "per_page": 100}).json()
    assert pid in [p["id"] for p in page["items"]]
    assert client.delete(f"/products/{pid}").status_code == 204
    assert client.get(f"/products/{pid}").status_code == 404
    assert client.delete(f"/products/{pid}").status_code == 404
    after = client.get("/products", params={"category": 4, "per_page": 100}).json()["items"]
    assert pid not in [p["id"] for p in after]


def test_a_price_change_drops_exactly_the_pages_that_show_the_product(client: httpx.Client):
    """Pages are tagged with the products on them: a new price refreshes those, the rest stay cached."""
    params = [{"category": 5, "per_page": 5, "page": n} for n in (1, 2)]
    pages = [client.get("/products", params=p).json() for p in params]
    shown = pages[0]["items"][1]["id"]
    assert shown not in [item["id"] for item in pages[1]["items"]]
    assert all(client.get("/products", params=p).headers["x-cache"] == "hit-l1" for p in params)
    old = client.get(f"/products/{shown}").json()["price"]
    new_price = "7.77" if old != "7.77" else "8.88"
    assert client.patch(f"/products/{shown}", json={"price": new_price}).status_code == 200
    first, second = (client.get("/products", params=p) for p in params)
    assert first.headers["x-cache"] == "miss" and first.json()["items"][1]["price"] == new_price  # fresh
    assert second.headers["x-cache"] == "hit-l1" and second.json() == pages[1]  # untouched, still cached
    assert client.get(f"/products/{shown}").json()["price"] == new_price


def test_wrong_method_is_405_with_allow_and_the_route_keeps_working(client: httpx.Client):
    # Nexios 3.12.3's Route.handle would make GET /products/1 answer 405 forever after this.
    for _ in range(2):
        wrong = client.post("/products/1")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "DELETE, GET, HEAD, PATCH"
        assert client.get("/products/1").status_code == 200
    assert client.put("/products").headers["allow"] == "GET, HEAD, POST"
    assert client.get("/products").status_code == 200


_JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    ("POST", "/products", {"content": b"{not json", "headers": _JSON}, 400),
    ("POST", "/products", {"content": b"", "headers": _JSON}, 400),
    ("POST", "/products", {"content": b'{"name": "a", "price": 1, "category_id": 1}'}, 415),
    ("POST", "/products", {"json": [1, 2]}, 422),
    ("POST", "/products", {"json": {"name": "a", "price": "NaN", "category_id": 1}}, 422),
    ("PATCH", "/products/1", {"json": {}}, 422),
    ("PATCH", "/products/1", {"json": {"name": "a\x00b"}}, 422),
    ("PATCH", "/products/1", {"json": {"description": "\x00"}}, 422),
    ("POST", "/products", {"content": b'{"name": "\\ud800", "price": 1, "category_id": 1}', "headers": _JSON}, 400),
    ("PATCH", "/products/1", {"content": b"\xff\xfe", "headers": _JSON}, 400),
    ("GET", "/products?page=0", {}, 422),
    ("GET", "/products?per_page=101", {}, 422),
    ("GET", "/products?page=abc&per_page=-5", {}, 422),
    ("GET", "/products?after=-1", {}, 422),
    ("GET", "/products/abc", {}, 404),
    ("GET", "/products/0", {}, 404),
    ("GET", f"/products/{2**70}", {}, 404),
    ("GET", "/products/999999", {}, 404),
    ("DELETE", "/products/nope", {}, 404),
    ("GET", "/no/such/path", {}, 404),
    ("GET", "/tasks/unknown", {}, 404),
    ("POST", "/uploads", {"content": b""}, 400),
    ("POST", "/products", {"content": b"x" * (1024 * 1024 + 1), "headers": _JSON}, 413),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD_REQUESTS)
def test_bad_input_gets_a_json_error_never_a_500(client: httpx.Client, method, path, kwargs, status):  # noqa: ANN001
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == status and response.json()["error"]
    assert "Traceback" not in response.text and "x-cache" in response.headers


def test_streamed_body_over_the_limit_is_413(client: httpx.Client):
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 100_000  # 2 MB without a Content-Length

    response = client.post("/uploads", content=chunks())
    assert response.status_code == 413


def test_upload_is_accepted_and_processed_in_the_background(client: httpx.Client):
    accepted = client.post("/uploads", content=b"hello upload")
    assert accepted.status_code == 202
    status_url = accepted.json()["status_url"]
    deadline = time.monotonic() + 10
    while (task := client.get(status_url).json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, task
        time.sleep(0.02)
    assert task["state"] == "done" and task["result"]["bytes"] == 12
    assert task["result"]["sha256"] == hashlib.sha256(b"hello upload").hexdigest()


def test_health_and_metrics(client: httpx.Client):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["postgres"]["ok"] and health.json()["redis"]["ok"]
    client.get("/products/3")
    client.get("/products/3")
    metrics = client.get("/metrics.json").json()
    assert metrics["mode"] == {"cache": True, "pool": True, "keyset": True, "compression": True, "join": True}
    assert metrics["requests"]["count"] > 0 and metrics["requests"]["p50_ms"] > 0
    assert metrics["cache"]["redis_available"] is True
    assert metrics["db"]["mode"] == "pool" and metrics["db"]["max_size"] == 10
    assert metrics["queue"]["workers"] == 4
    assert metrics["requests"]["by_cache"]["hit-l1"] >= 1  # the second GET /products/3 was a cache hit


def test_large_list_is_compressed_when_asked(client: httpx.Client):
    response = client.get("/products", params={"per_page": 100}, headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["items"]) == 100


@pytest.fixture(scope="module")
def naive(server: ApiServer, database_url: str, redis_url: str) -> Iterator[ApiServer]:
    """The naive API (no cache, connect per request, OFFSET, no compression, N+1) on the same data."""
    with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=server.schema,
                               mode="naive", cache_namespace=unique_name("t_api_naive"))) as srv:
        yield srv


def test_naive_mode_answers_exactly_like_the_optimised_one(server: ApiServer, naive: ApiServer):
    with httpx.Client(base_url=server.url) as fast, httpx.Client(base_url=naive.url) as slow:
        for path, params in [("/products/5", {}), ("/products/118", {}), ("/products", {"page": 3, "per_page": 7}),
                             ("/products", {"category": 5, "per_page": 50})]:
            a, b = fast.get(path, params=params), slow.get(path, params=params)
            assert a.status_code == b.status_code == 200
            expected = a.json()
            expected.pop("next_after", None)  # keyset cursors exist only in keyset mode
            assert b.json() == expected
            assert b.headers["x-cache"] == "bypass"
        big = slow.get("/products", params={"per_page": 100}, headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in big.headers
        metrics = slow.get("/metrics.json").json()
        assert metrics["cache"] is None and metrics["db"]["mode"] == "connect-per-request"
        assert metrics["db"]["connects"] >= 4

"""The Starlette twin answers what the product answers, from the same cache; the product never imports Starlette."""

from __future__ import annotations

import subprocess
import sys

import httpx

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.bench.starlette_twin import TwinServer
from tests._api_helpers import drop_namespace, unique_name


def test_the_twin_answers_the_products_bodies_and_errors(database_url: str, redis_url: str) -> None:
    schema = unique_name("t_twin")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=120,
                           cache_namespace=schema)
    try:
        with ApiServer(settings) as product, TwinServer(settings) as twin:
            for path in ("/products/7", "/products?page=2&per_page=5", "/products?after=10&per_page=3",
                         "/products/999999", "/products/abc", "/products?per_page=1000"):
                ours, theirs = httpx.get(product.url + path), httpx.get(twin.url + path)
                assert (theirs.status_code, theirs.json()) == (ours.status_code, ours.json()), path
                assert theirs.headers["content-type"] == "application/json"
                assert "server-timing" in ours.headers and "server-timing" not in theirs.headers  # no layers
            # the same cache, kept coherent as another worker's: the twin's read after the product's write sees it
            changed = httpx.patch(product.url + "/products/7", json={"price": "3.21"}, headers=product.auth_headers)
            assert changed.status_code == 200
            assert httpx.get(twin.url + "/products/7").json()["price"] == "3.21"
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def test_the_served_product_never_imports_starlette() -> None:
    code = ("import sys, perf.api.app, perf.api.cli, perf.api.server; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'starlette'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout

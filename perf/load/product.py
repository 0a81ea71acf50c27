"""The product API's traffic mix and the /metrics.json fields the recommendation rules read.

``SCENARIO`` is the default mix (80% list pages across categories, a quarter of them
deeper pages asked for with a keyset cursor ``?after=``; 15% item reads; 5% price
updates) for a database seeded with :data:`PRODUCTS` products in :data:`CATEGORIES`
categories; :func:`product_scenario` builds one for other sizes and with the API's
write token (it pickles, so ``--processes`` can ship it). Writes need that token
(``product_scenario(token=server.token)``): without it they answer 401 and
count as failed. ``READS`` is the same mix without the writes, for the CLI against an API
whose token it does not know:
``python -m perf load http://127.0.0.1:8000 --scenario perf.load.product:READS``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from typing import Any

import orjson

from perf.load.scenarios import Endpoint, Scenario

PRODUCTS = 1000
CATEGORIES = 20
#: What a browser's fetch() sends with every request: without Accept-Encoding no server may
#: compress, so a compression switch would change nothing on the wire.
BROWSER = {"accept": "application/json, text/plain, */*", "accept-encoding": "gzip, deflate, br, zstd"}
_JSON = {**BROWSER, "content-type": "application/json"}


def list_path(rng: random.Random, *, categories: int = CATEGORIES, pages: int = 3) -> str:
    """A list page of a random category; the first page is the most popular."""
    page = 1 if rng.random() < 0.6 else rng.randint(2, max(pages, 2))
    return f"/products?category={rng.randint(1, categories)}&page={page}&per_page=20"


def cursor_path(rng: random.Random, *, categories: int = CATEGORIES, products: int = PRODUCTS,
                per_page: int = 20, pages: int = 10) -> str:
    """A deeper list page (2..``pages``, at most what a category has), asked for by number *and* cursor.

    Seeded products fall uniformly into categories, so page ``k`` of one category starts
    after id ~ ``(k - 1) * per_page * categories``: a mode with ``keyset`` seeks there
    (``id > after``), one without ignores ``after`` and skips ``(k - 1) * per_page`` rows
    (OFFSET). Both answer (about) the same page, so the two are compared on equal work.
    """
    existing = products // (per_page * categories)  # full pages a category has, on average
    page = rng.randint(2, max(min(pages, existing), 2))
    after = min((page - 1) * per_page * categories, max(products - 1, 0))
    return f"/products?category={rng.randint(1, categories)}&page={page}&per_page={per_page}&after={after}"


def item_path(rng: random.Random, *, products: int = PRODUCTS) -> str:
    """One product's detail page."""
    return f"/products/{rng.randint(1, products)}"


def price_body(rng: random.Random) -> bytes:
    """A PATCH body changing the price (a decimal string: the API takes no float prices)."""
    return orjson.dumps({"price": f"{rng.uniform(1, 500):.2f}"})


def product_scenario(*, products: int = PRODUCTS, categories: int = CATEGORIES, list_weight: float = 80,
                     item_weight: float = 15, write_weight: float = 5, cursor_share: float = 0.25,
                     token: str | None = None) -> Scenario:
    """The list/item/write mix for a database of ``products`` in ``categories``.

    ``cursor_share`` of the list traffic (default a quarter) pages deeper with a keyset
    cursor (:func:`cursor_path`, endpoint ``list_after``), so mode ``keyset`` has requests
    to change. ``token``: the API's write token (``ApiServer.token``), sent as
    ``Authorization: Bearer`` on the writes; without it they answer 401. Every request
    carries a browser's ``Accept`` and ``Accept-Encoding`` (:data:`BROWSER`).
    """
    if products < 1 or categories < 1:
        raise ValueError(f"products and categories must be >= 1, got {products!r} and {categories!r}")
    if not 0 <= cursor_share <= 1:
        raise ValueError(f"cursor_share={cursor_share!r} must be in [0, 1] (the share of list requests with ?after=)")
    endpoints = [
        Endpoint("item", functools.partial(item_path, products=products), weight=item_weight, headers=BROWSER),
    ]
    if list_weight * (1 - cursor_share):
        endpoints.insert(0, Endpoint("list", functools.partial(list_path, categories=categories),
                                     weight=list_weight * (1 - cursor_share), headers=BROWSER))
    if list_weight * cursor_share:
        endpoints.insert(1, Endpoint("list_after", functools.partial(cursor_path, categories=categories,
                                                                     products=products),
                                     weight=list_weight * cursor_share, headers=BROWSER))
    if write_weight:
        endpoints.append(Endpoint("write", functools.partial(item_path, products=products), weight=write_weight,
                                  method="PATCH", body=price_body,
                                  headers={**_JSON, "authorization": f"Bearer {token}"} if token else _JSON))
    return Scenario(endpoints)


#: Each endpoint of :func:`product_scenario` -> the API route (method and template) that serves it,
#: as ``/metrics`` labels it: the server's and the generator's figures meet on these keys.
ROUTES = {"list": "GET /products", "list_after": "GET /products", "item": "GET /products/{product_id}",
          "write": "PATCH /products/{product_id}"}

SCENARIO = product_scenario()
#: The read part of :data:`SCENARIO` (list pages, cursor pages and item reads, 60:20:15): needs no token.
READS = product_scenario(write_weight=0)


def api_measurements(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Recommendation inputs from the API's flattened ``/metrics.json`` (see ``ServerSampler.metrics``).

    Returns ``pool_wait_p99_ms``, ``pool_max_size`` and ``hit_ratio`` when present. With
    several workers, /metrics.json answers pool and cache figures from whichever worker took the request.
    """
    out: dict[str, Any] = {}
    if metrics.get("db.wait_p99") is not None:
        out["pool_wait_p99_ms"] = float(metrics["db.wait_p99"]) * 1e3
    if metrics.get("db.max_size") is not None:
        out["pool_max_size"] = int(metrics["db.max_size"])
    if metrics.get("cache.hit_ratio") is not None:
        out["hit_ratio"] = {"/products": float(metrics["cache.hit_ratio"])}
    return out

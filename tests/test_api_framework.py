"""The framework's cost: ``/bare/...`` twins of the product routes, the lean Nexios path, in-process calls.

Everything runs the real app in process (:class:`perf.measure.InProcessClient`: its
lifespan opens the pool, the cache and the durable queue) on real PostgreSQL and Redis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nexios.dependencies import Depend
from nexios.http.response import BaseResponse
from nexios.routing import Route

from perf.api.app import ApiNexios, create_app
from perf.api.demo_framework import (
    BARE,
    DEFAULT,
    LEAN,
    ROUTE_CALLS,
    FrameworkApps,
    framework_apps,
    framework_costs,
    layer_costs,
)
from perf.api.errors import ErrorBoundary, SafeRoute
from perf.api.responses import JsonBytes
from perf.api.settings import ApiSettings
from perf.bench.api import layer_verdicts
from perf.measure import InProcessClient, profile_requests
from tests._api_helpers import _drop, unique_name


@pytest.fixture
async def settings(database_url: str, redis_url: str) -> AsyncIterator[ApiSettings]:
    schema = unique_name("t_fw")
    yield ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=40, task_workers=1)
    await _drop(database_url, schema, redis_url, schema)


@pytest.fixture
async def apps(settings: ApiSettings) -> AsyncIterator[FrameworkApps]:
    async with framework_apps(settings) as running:
        yield running


def _json(body: bytes) -> Any:
    return orjson.loads(body)


async def test_the_product_serves_no_bare_routes_unless_asked(settings: ApiSettings):
    """The /bare twins are the benchmark's apparatus: the served product (the default) has none."""
    assert settings.bare_routes is False
    async with InProcessClient(create_app(settings)) as client:
        assert (await client.request("GET", "/products/7"))[0] == 200
        for path in ("/bare/products/7", "/bare/hello", "/bare/products"):
            status, headers, body = await client.request("GET", path)
            assert status == 404 and _json(body)["status"] == 404, (path, status)


async def test_bare_twins_answer_what_the_nexios_routes_answer(apps: FrameworkApps):
    client, auth = apps.clients[LEAN], {"authorization": f"Bearer {apps.lean.settings.api_token}"}
    for path in ("/products/7", "/products?page=2&per_page=5", "/products?after=10&per_page=3&category=1"):
        nexios, bare = await client.request("GET", path), await client.request("GET", "/bare" + path)
        assert nexios[0] == bare[0] == 200 and _json(nexios[2]) == _json(bare[2])
        assert bare[1]["content-type"] == "application/json" and "server-timing" in bare[1]  # same layers
    created = await client.request("POST", "/bare/products", json={"name": "Twin", "price": "2.50", "category_id": 2},
                                   headers=auth)
    assert created[0] == 201 and created[1]["location"] == f"/products/{_json(created[2])['id']}"
    pid = _json(created[2])["id"]
    patched = await client.request("PATCH", f"/bare/products/{pid}", json={"price": "3.00"}, headers=auth)
    assert patched[0] == 200 and _json(patched[2])["price"] == "3.00"
    assert _json((await client.request("GET", f"/products/{pid}"))[2])["price"] == "3.00"  # one service, one cache
    assert (await client.request("DELETE", f"/bare/products/{pid}", headers=auth))[0] == 204
    assert (await client.request("GET", f"/products/{pid}"))[0] == 404


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/bare/products", 401),            # no token
    ("PATCH", "/bare/products/7", 401),
    ("GET", "/bare/products/07", 404),          # "07" would alias 7
    ("GET", "/bare/products/%C2%B2", 404),
    ("GET", "/bare/products?page=0", 422),
    ("PUT", "/bare/products/7", 405),
    ("GET", "/bare/nothing", 404),
    ("GET", "/bare/products/7/extra", 404),
])
async def test_bare_routes_refuse_bad_requests_with_json(apps: FrameworkApps, method: str, path: str, status: int):
    got, headers, body = await apps.clients[LEAN].request(method, path)
    assert got == status and headers["content-type"] == "application/json" and _json(body)["status"] == status
    if status == 405:
        assert headers["allow"] == "DELETE, GET, HEAD, PATCH"


async def test_bare_writes_check_the_body_like_the_nexios_routes(apps: FrameworkApps):
    auth = {"authorization": f"Bearer {apps.lean.settings.api_token}"}
    client = apps.clients[LEAN]
    for prefix in ("", "/bare"):
        wrong_type = await client.request("POST", f"{prefix}/products", body=b"{}",
                                          headers={**auth, "content-type": "text/plain"})
        broken = await client.request("POST", f"{prefix}/products", body=b"{nope",
                                      headers={**auth, "content-type": "application/json"})
        invalid = await client.request("POST", f"{prefix}/products", json={"name": ""}, headers=auth)
        assert (wrong_type[0], broken[0], invalid[0]) == (415, 400, 422)
        assert [e["field"] for e in _json(invalid[2])["errors"]] == ["price", "category_id", "name"]


async def test_every_route_answers_alike_through_all_three_paths(apps: FrameworkApps):
    for route in ROUTE_CALLS:
        for variant in (DEFAULT, LEAN, BARE):
            await apps.call(variant, route)()  # raises unless the expected status came back


async def test_the_framework_default_path_costs_several_times_the_lean_one(apps: FrameworkApps):
    costs = await framework_costs(apps, repeat=3, number=60, write_number=2)
    assert set(costs.route) == {r.label for r in ROUTE_CALLS} and len(costs) == 3 * len(ROUTE_CALLS)
    item = costs[costs.route == "GET /products/{id}"].set_index("variant")
    # measured 6-7x (two anyio stream bridges a request); asserted with a wide margin
    assert item.loc[DEFAULT, "median_us"] > 2.5 * item.loc[LEAN, "median_us"]
    assert (costs.ratio_to_bare[costs.variant == BARE] == 1.0).all()


async def test_layer_costs_gives_each_layer_its_own_spread(apps: FrameworkApps):
    layers = await layer_costs(apps, repeat=3, number=30)
    names = [name for name, _ in apps.lean.layers]
    assert list(layers.layer) == ["Nexios app (router, handler, service)", *(f"+ {n}" for n in names)]
    assert (layers.added_q1_us <= layers.added_us).all() and (layers.added_us <= layers.added_q3_us).all()
    assert layers.added_us.iloc[0] == pytest.approx(layers.median_us.iloc[0]) and layers.added_us.iloc[0] > 0
    assert layer_verdicts(layers).count(",") == len(names) - 1  # one verdict a layer, none for Nexios


async def test_profile_attributes_the_default_path_to_nexios_and_anyio(apps: FrameworkApps):
    route = next(r for r in ROUTE_CALLS if r.label == "GET /products/{id}")
    default, _ = await profile_requests(apps.call(DEFAULT, route), number=200)
    bare, top = await profile_requests(apps.call(BARE, route), number=200, top=5)
    assert {"nexios", "anyio"} <= set(default.package) and "nexios" not in set(bare.package)
    assert len(top) == 5 and abs(default.share.sum() - 1.0) < 1e-9


async def test_in_process_client_reports_a_failed_startup(settings: ApiSettings):
    broken = create_app(dataclasses.replace(settings, database_url="postgresql://nobody@127.0.0.1:1/none"))
    with pytest.raises(RuntimeError, match="lifespan startup failed"):
        async with InProcessClient(broken, startup_timeout=30):
            pass


def _nexios_app(*, direct: bool) -> ApiNexios:
    app = ApiNexios(debug=False, route_class=SafeRoute)

    async def answer(request, response, item_id: str):  # noqa: ANN001, ANN202
        return response.json({"id": item_id, "q": request.query_params.get("q")})

    async def returns_a_dict(request, response):  # noqa: ANN001, ANN202
        return {"not": "the manager"}

    def who() -> str:
        return "injected"

    async def with_dependency(request, response, name: str = Depend(who)):  # noqa: ANN001, ANN202, B008
        return response.json({"name": name})

    app.add_route(SafeRoute("/items/{item_id}", answer, methods=["GET"], direct=direct))
    app.add_route(SafeRoute("/dict", returns_a_dict, methods=["GET"], direct=direct))
    app.add_route(SafeRoute("/dep", with_dependency, methods=["GET"], direct=direct))
    app.wrap_asgi(ErrorBoundary)
    return app


@pytest.mark.parametrize("direct", [True, False])
async def test_safe_route_matches_and_answers_as_nexios_does(direct: bool):
    async with InProcessClient(_nexios_app(direct=direct), lifespan=False) as client:
        ok = await client.request("GET", "/items/abc?q=1")
        wrong = await client.request("DELETE", "/items/abc")
        missing = await client.request("GET", "/items")
        injected = await client.request("GET", "/dep")  # a route with a dependency: the framework's path
        as_dict = await client.request("GET", "/dict")
    assert ok[0] == 200 and _json(ok[2]) == {"id": "abc", "q": "1"}
    assert wrong[0] == 405 and wrong[1]["allow"] == "GET, HEAD"
    assert missing[0] == 404 and _json(missing[2])["status"] == 404
    assert injected[0] == 200 and _json(injected[2]) == {"name": "injected"}
    # Nexios turns a returned dict into JSON; the direct path refuses it (a handler bug) as a JSON 500
    assert as_dict[0] == (500 if direct else 200)
    assert as_dict[1]["content-type"] == "application/json"


async def test_safe_route_strips_the_root_path_like_nexios():
    app = _nexios_app(direct=True)
    route = next(r for r in app.router.routes if getattr(r, "raw_path", "") == "/items/{item_id}")
    scope = {"type": "http", "method": "GET", "path": "/api/items/9", "root_path": "/api"}
    status, params = route.match(scope)
    assert status.name == "FULL" and params == {"item_id": "9"}
    assert route.match({**scope, "method": "POST"})[0].name == "PARTIAL"
    assert route.match({**scope, "path": "/api/other"})[0].name == "NONE"


@pytest.mark.parametrize("raw_path", ["/products", "/openapi.json", "/products/{product_id}", "/a/{x}/b"])
async def test_safe_route_match_agrees_with_nexios_route_match(raw_path: str):
    async def handler(request, response, **params):  # noqa: ANN001, ANN003, ANN202
        return response

    ours, theirs = SafeRoute(raw_path, handler, methods=["GET"]), Route(raw_path, handler, methods=["GET"])
    assert (ours.static_path is not None) == ("{" not in raw_path)  # a plain path is compared as a string
    for path in ("/products", "/products/", "/products/7", "/openapi.json", "/openapiXjson", "/a/1/b", "/a//b",
                 "/Products", "/products/7/x", ""):
        for method in ("GET", "HEAD", "POST"):
            scope = {"type": "http", "method": method, "path": path}
            assert ours.match(scope) == theirs.match(scope), (path, method)


def test_json_bytes_sends_what_nexios_base_response_sends():
    body = orjson.dumps({"id": 7, "name": "Café"})
    for status, extra in ((200, None), (201, {"Location": "/products/7", "Retry-After": "1"})):
        ours, theirs = JsonBytes(body, status, extra), BaseResponse(body, status, extra, "application/json")
        assert ours.status_code == theirs.status_code == status and ours.body == theirs.body == body
        assert sorted(ours.raw_headers) == sorted(theirs.raw_headers)
        assert ours.content_type == theirs.content_type == "application/json"


async def test_the_lean_path_leaves_no_reference_cycles_behind(apps: FrameworkApps):
    """Nexios' Response keeps itself in the request's state: ~50 objects of cyclic garbage a request on the
    framework's own path, freed only by full collections that stall a busy server. The lean path breaks it."""
    import gc

    route = next(r for r in ROUTE_CALLS if r.label == "GET /products/{id}")
    garbage = {}
    for variant in (DEFAULT, LEAN, BARE):
        call = apps.call(variant, route)
        await call()
        gc.collect()
        gc.disable()
        try:
            for _ in range(500):  # background tasks (queue polling) may add a few cycles: per request they vanish
                await call()
            garbage[variant] = gc.collect() / 500
        finally:
            gc.enable()
    assert garbage[LEAN] < 1 and garbage[BARE] < 1, garbage
    assert garbage[DEFAULT] > 10, garbage  # measured ~100 a request: the framework's own path, upstream

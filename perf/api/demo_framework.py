"""Profile the framework: what Nexios costs per request on each product route, in process.

Two instances of the product API run in this process (their lifespans included: pool,
cache, durable queue) on the same schema:

* ``Nexios, framework default``: ``nexios_lean=False``, every request through Nexios'
  two per-request stream bridges and its per-route handler wrapper (the framework as it ships);
* ``Nexios, lean``: this API's default (:class:`~perf.api.app.ApiNexios` without the
  bridges, :class:`~perf.api.errors.SafeRoute` calling handlers directly);
* ``bare ASGI``: the same routes under ``/bare/`` (:mod:`perf.api.bare_routes`) on the lean
  instance: same layers, same service, same cache, no framework.

Each request is an ASGI call (:class:`~perf.measure.InProcessClient`): no sockets, no
HTTP parsing, so what differs between the three is the framework alone.
:func:`framework_costs` times every product route interleaved (``compare_async``);
:func:`layer_costs` what each pure ASGI layer adds; :func:`framework_profile` where the
time goes (cProfile by package).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from perf.api.app import ApiApp, create_app
from perf.api.settings import ApiSettings
from perf.measure import InProcessClient, compare_async, profile_requests

DEFAULT, LEAN, BARE = "Nexios, framework default", "Nexios, lean", "bare ASGI"
VARIANTS = (DEFAULT, LEAN, BARE)


@dataclass(frozen=True)
class RouteCall:
    """One product route as a request: ``path`` through Nexios, ``"/bare" + path`` without it."""

    label: str
    method: str
    path: str
    json: dict[str, Any] | None = None
    write: bool = False
    status: int = 200


#: Every product route (and ``/hello``). The reads hit the L1 cache once warmed; the writes
#: commit to PostgreSQL and invalidate the cache (POST then DELETE of the product it made).
ROUTE_CALLS = (
    RouteCall("GET /hello", "GET", "/hello"),
    RouteCall("GET /products/{id}", "GET", "/products/7"),
    RouteCall("GET /products?page=1", "GET", "/products?page=1"),
    RouteCall("PATCH /products/{id}", "PATCH", "/products/7", json={"price": "19.90"}, write=True),
    RouteCall("POST + DELETE /products", "POST", "/products",
              json={"name": "Framework probe", "price": "1.00", "category_id": 1}, write=True, status=201),
)


@dataclass
class FrameworkApps:
    """The two running API instances and a client for each (see the module docstring)."""

    lean: ApiApp
    default: ApiApp
    clients: dict[str, InProcessClient]

    def call(self, variant: str, route: RouteCall) -> Callable[[], Awaitable[None]]:
        """An awaitable factory that sends ``route`` as ``variant`` and checks its status."""
        client = self.clients[DEFAULT if variant == DEFAULT else LEAN]
        path = "/bare" + route.path if variant == BARE else route.path
        headers = {"authorization": f"Bearer {self.lean.settings.api_token}"} if route.write else None

        async def once() -> None:
            status, _, body = await client.request(route.method, path, json=route.json, headers=headers)
            if status != route.status:
                raise RuntimeError(f"{variant}: {route.method} {path} answered {status}, not {route.status}: "
                                   f"{body[:200]!r}")
            if route.method == "POST":  # POST + DELETE: leave the table as it was
                product_id = int(orjson.loads(body)["id"])
                item = ("/bare" if variant == BARE else "") + f"/products/{product_id}"
                status, _, body = await client.request("DELETE", item, headers=headers)
                if status != 204:
                    raise RuntimeError(f"{variant}: DELETE {item} answered {status}: {body[:200]!r}")

        return once


@asynccontextmanager
async def framework_apps(settings: ApiSettings) -> AsyncIterator[FrameworkApps]:
    """Start the lean and the framework-default API in this process (same schema, own cache keys)."""
    default_settings = dataclasses.replace(settings, nexios_lean=False,
                                           cache_namespace=f"{settings.cache_namespace}:default")
    lean = create_app(dataclasses.replace(settings, nexios_lean=True, bare_routes=True))  # BARE calls /bare/...
    default = create_app(default_settings)
    async with AsyncExitStack() as stack:
        clients = {LEAN: await stack.enter_async_context(InProcessClient(lean)),
                   DEFAULT: await stack.enter_async_context(InProcessClient(default))}
        yield FrameworkApps(lean=lean, default=default, clients=clients)


async def framework_costs(apps: FrameworkApps, *, repeat: int = 10, number: int = 200,
                          write_number: int = 10) -> pd.DataFrame:
    """µs per request of every route in :data:`ROUTE_CALLS` for each variant, interleaved rounds.

    Columns: ``route``, ``variant``, ``median_us``, ``q1_us``, ``q3_us`` and ``ratio_to_bare``
    (the median of round-by-round time ratios to ``bare ASGI``). Reads run ``number`` requests
    a round, writes ``write_number``.
    """
    rows = []
    for route in ROUTE_CALLS:
        variants = {name: apps.call(name, route) for name in VARIANTS}
        comparison = await compare_async(variants, warmup=2, repeat=repeat,
                                         number=write_number if route.write else number, baseline=BARE)
        for variant, row in comparison.summary().iterrows():
            rows.append({"route": route.label, "variant": variant, "median_us": row["median"] * 1e6,
                         "q1_us": row["q1"] * 1e6, "q3_us": row["q3"] * 1e6,
                         "ratio_to_bare": row["ratio_to_baseline"]})
    frame = pd.DataFrame(rows)
    frame["variant"] = pd.Categorical(frame["variant"], categories=VARIANTS, ordered=True)
    return frame.sort_values(["route", "variant"], key=_route_order, ignore_index=True)


def _route_order(column: pd.Series) -> pd.Series:
    if column.name == "route":
        return column.map({r.label: i for i, r in enumerate(ROUTE_CALLS)})
    return column


#: What a browser (and httpx, with brotli and zstandard installed) sends: the compression layer negotiates
#: on every request that carries it, so the layer table measures with it.
BROWSER_HEADERS = {"accept-encoding": "gzip, deflate, br, zstd"}


async def layer_costs(apps: FrameworkApps, *, path: str = "/products/7", headers: dict[str, str] | None = None,
                      repeat: int = 10, number: int = 300) -> pd.DataFrame:
    """What each piece of the lean app adds to ``GET path`` (an L1 hit), in process.

    Rows, innermost first: Nexios alone (its router, :class:`~perf.api.errors.SafeRoute`, the
    inner error boundary, the handler and service), then each pure ASGI layer of
    :func:`perf.api.app.api_layers` around it. ``median_us``, ``q1_us``, ``q3_us``: the
    stack up to that row; ``added_us``, ``added_q1_us``, ``added_q3_us``: what the row adds,
    from round-by-round differences (every stack runs once a round, in shuffled order), so a
    layer's spread is its own, not the sum of two stacks'. ``headers`` default to
    :data:`BROWSER_HEADERS`.

    The worker counts as busy while it measures (one more request in flight, as under load):
    the timing layer then counts each response in plain dicts and the counts are folded into
    the metrics once at the end, as the sampler folds them once a second under load; an idle
    worker folds every response at once (``python -m perf.bench.metrics`` shows both).

    Times are this thread's CPU time (``time.thread_time``): an L1 hit called in process never
    waits on I/O, and a layer of a few µs drowns in wall-clock noise when another process
    shares the core. The cyclic garbage collector is off while it measures, as ``timeit``
    does: a full collection walks this process' whole heap (pandas' included, not the
    server's) and lands on whichever stack is running, ±10 µs a request; the lean path
    leaves no cycles to collect (``tests/test_api_framework.py``).
    """
    stacks: dict[str, Callable[..., Awaitable[None]]] = {"Nexios app (router, handler, service)": apps.lean.nexios}
    stacks.update({f"+ {name}": layer for name, layer in apps.lean.layers})
    clients = {name: InProcessClient(app, lifespan=False) for name, app in stacks.items()}
    sent = BROWSER_HEADERS if headers is None else headers

    def get(client: InProcessClient) -> Callable[[], Awaitable[Any]]:
        return functools.partial(client.request, "GET", path, headers=sent)

    for name, client in clients.items():
        status, _, body = await client.request("GET", path, headers=sent)
        if status != 200:
            raise RuntimeError(f"{name}: GET {path} answered {status}: {body[:200]!r}")
    gc.collect()
    gc.disable()
    metrics = apps.lean.state.metrics
    metrics.active += 1  # as under load: another request in flight, so counts are folded in by the sampler
    try:
        comparison = await compare_async({name: get(c) for name, c in clients.items()}, warmup=2, repeat=repeat,
                                         number=number, clock=time.thread_time)
    finally:
        metrics.active -= 1
        metrics.publish()
        gc.enable()
    summary = comparison.summary().reindex(list(stacks))
    wide = comparison.samples.pivot(index="round", columns="variant", values="seconds")[list(stacks)] * 1e6
    added = wide.diff(axis=1).fillna(wide)  # per round: this stack minus the one inside it
    return pd.DataFrame({"layer": summary.index, "median_us": summary["median"].to_numpy() * 1e6,
                         "q1_us": summary["q1"].to_numpy() * 1e6, "q3_us": summary["q3"].to_numpy() * 1e6,
                         "added_us": added.median().to_numpy(), "added_q1_us": added.quantile(0.25).to_numpy(),
                         "added_q3_us": added.quantile(0.75).to_numpy()})


async def framework_profile(apps: FrameworkApps, *, path: str = "/products/7",
                            number: int = 2000) -> pd.DataFrame:
    """Own time per request by package (cProfile) of ``GET path`` for each variant: where it goes.

    Columns: ``package`` and one per variant (µs per request under the profiler, which
    inflates every Python call: compare shares, not absolute values).
    """
    route = RouteCall(f"GET {path}", "GET", path)
    frames = []
    for variant in VARIANTS:
        by_package, _ = await profile_requests(apps.call(variant, route), number=number)
        frames.append(by_package.set_index("package")["own_us"].rename(variant))
    table = pd.concat(frames, axis=1).fillna(0.0)
    table = table.loc[table.max(axis=1).sort_values(ascending=False).index]
    return table.reset_index(names="package")

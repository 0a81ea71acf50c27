"""Benchmark the product API: cached vs uncached reads, and the Nexios framework tax.

``python -m perf.bench.api [--rounds N] [--duration S] [--connections C] [--in-process]``

Serves the API (1 uvicorn worker, pinned to core 0 where possible) three times, modes
``all``, ``all,-fastpath`` and ``all,-cache``, on the same seeded schema, and drives them with wrk (pinned to
core 1) if it is on PATH, else with the small asyncio keep-alive client below. Variants
run in interleaved rounds (A B C D, A B C D, ...) so machine noise hits all of them alike;
the printout has medians with quartiles, and per-round ratios:

* ``GET /products/{id}`` (random ids) cached (L1 hits, answered by the ASGI fast path)
  vs uncached (PostgreSQL each time, mode ``all,-cache``); target: cached >= 5x the uncached
  req/s; also cached but routed through Nexios (mode ``all,-fastpath``);
* Nexios ``GET /hello`` vs a bare ASGI ``GET /bare/hello`` on the same server: the framework tax;
* in-process, no network, per route (``GET /hello``, ``GET /products/7`` from memory):
  µs per request through Nexios with its two per-request stream bridges (the framework's
  default), through :class:`~perf.api.app.ApiNexios` without them (the API's default),
  and as bare ASGI (``--in-process`` prints only these, in seconds);
* in-process: what a timing layer costs as a Nexios function middleware, via
  ``wrap_asgi`` (inside Nexios' per-request bridges) and as pure ASGI outside Nexios.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pandas as pd
from nexios import NexiosApp

from perf.api.app import ApiNexios
from perf.api.demo_bare import BARE_PATH, with_bare_hello
from perf.api.errors import ErrorBoundary, SafeRoute
from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings
from perf.api.timing import TimingMiddleware
from perf.api.validation import parse_id
from perf.config import get_settings
from perf.measure import LatencyHistogram, compare_async, machine_info, summarize
from perf.measure.timing import Comparison
from perf.services import ensure_services

SCHEMA = "bench_api"
TARGET_CACHE_SPEEDUP = 5.0


@dataclass(frozen=True)
class LoadResult:
    """One load run: requests per second and latency percentiles in seconds."""

    rps: float
    p50: float
    p99: float
    errors: int


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_LUA = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/products/" .. math.random(1, {ids}))
end
"""


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk's output has no {pattern!r}; it was:\n{text}")
    return match.group(1)


def _wrk_seconds(text: str) -> float:
    number, unit = _find(r"^([\d.]+)(?:us|ms|s)$", text), _find(r"(us|ms|s)$", text)
    return float(number) * _WRK_UNITS[unit]


def run_wrk(url: str, *, duration: float, connections: int, ids: int | None = None,
            cpu: Sequence[int] | None = None) -> LoadResult:
    """Run wrk against ``url`` (``ids``: random ``/products/1..ids``); parse req/s, p50, p99."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(int(duration), 1)}s", "--latency", url]
        if ids:
            script.write(_LUA.format(ids=ids))
            script.flush()
            cmd[1:1] = ["-s", script.name]
        if cpu and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(map(str, cpu)), *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _wrk_seconds(_find(r"\s50%\s+([\d.]+\w+)", out))
    p99 = _wrk_seconds(_find(r"\s99%\s+([\d.]+\w+)", out))
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\D+(\d+)", out))
    return LoadResult(rps, p50, p99, errors)


async def _client(host: str, port: int, paths: list[str], deadline: float, hist: LatencyHistogram,
                  counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        i = 0
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(_find(r"(?i)content-length:\s*(\d+)", head.decode("latin-1")))
            await reader.readexactly(length)
            hist.record(time.perf_counter() - started)
            counts[0 if head.startswith(b"HTTP/1.1 2") else 1] += 1
    finally:
        writer.close()
        await writer.wait_closed()


def run_asyncio_client(url: str, *, duration: float, connections: int, ids: int | None = None,
                       cpu: Sequence[int] | None = None) -> LoadResult:
    """Fallback load generator: ``connections`` keep-alive HTTP/1.1 loops for ``duration`` seconds."""
    if cpu:
        try:
            os.sched_setaffinity(0, cpu)
        except (AttributeError, OSError):
            pass
    parts = httpx.URL(url)
    paths = [f"/products/{(i * 7919) % ids + 1}" for i in range(ids)] if ids else [parts.raw_path.decode()]
    hist, counts = LatencyHistogram(), [0, 0]

    async def drive() -> float:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(_client(parts.host, parts.port or 80, paths[i:] + paths[:i], deadline, hist, counts)
                               for i in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(drive())
    return LoadResult((counts[0] + counts[1]) / elapsed, hist.percentile(50), hist.percentile(99), counts[1])


def _hello_app(layer: str) -> Any:
    """A Nexios hello app with the timing layer placed as ``layer`` (see :func:`layer_costs`)."""
    app = NexiosApp(debug=False)

    @app.get("/hello")
    async def hello(request: Any, response: Any) -> Any:
        return response.resp(b"hello", content_type="text/plain")

    if layer == "function middleware":
        async def timing(request: Any, response: Any, call_next: Any) -> Any:
            started = time.perf_counter()
            result = await call_next()
            response.set_header("server-timing", f"total;dur={(time.perf_counter() - started) * 1e3:.2f}")
            return result

        app.add_middleware(timing)
    elif layer == "wrap_asgi":
        app.wrap_asgi(TimingMiddleware)
    elif layer == "ASGI outside Nexios":
        return TimingMiddleware(app)
    return app


async def _asgi_get(app: Any, path: str) -> None:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"bench")], "http_version": "1.1", "scheme": "http", "root_path": "",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "asgi": {"version": "3.0"}}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    await app(scope, receive, send)


async def layer_costs(*, repeat: int = 10, number: int = 200) -> Comparison:
    """In-process cost per request of Nexios ``/hello`` with a timing layer as a function middleware,
    via ``wrap_asgi``, or as pure ASGI outside Nexios, against no layer and a bare ASGI hello."""
    apps = {name: _hello_app(name) for name in ("no layer", "function middleware", "wrap_asgi",
                                                "ASGI outside Nexios")}
    bare = with_bare_hello(_hello_app("no layer"))
    variants: dict[str, Callable[[], Awaitable[None]]] = {
        name: functools.partial(_asgi_get, app, "/hello") for name, app in apps.items()}
    variants["bare ASGI"] = functools.partial(_asgi_get, bare, BARE_PATH)
    return await compare_async(variants, warmup=1, repeat=repeat, number=number, baseline="no layer")


_PRODUCT = {"id": 7, "category_id": 2, "category": "Category 002", "name": "Desk Lamp 7", "price": "19.90",
            "created_at": "2026-01-01T00:00:00+00:00", "description": "A lamp.",
            "image_urls": [f"https://img.example.com/p/7/{i}.jpg" for i in range(3)]}


async def _product_json(request: Any, response: Any, product_id: str) -> Any:
    parse_id(product_id)
    return response.resp(orjson.dumps(_PRODUCT), content_type="application/json")


async def _hello_text(request: Any, response: Any) -> Any:
    return response.resp(b"hello", content_type="text/plain")


def _api_nexios(*, bridges: bool) -> ApiNexios:
    """The API's Nexios setup (SafeRoute, ErrorBoundary around the router) with two in-memory routes."""
    app = ApiNexios(debug=False, route_class=SafeRoute, bridges=bridges)
    app.add_route(SafeRoute("/hello", _hello_text, methods=["GET"]))
    app.add_route(SafeRoute("/products/{product_id}", _product_json, methods=["GET"]))
    app.wrap_asgi(ErrorBoundary)
    return app


async def _bare_api(scope: Any, receive: Any, send: Any) -> None:
    """The same two routes as raw ASGI: what the framework's routing and objects replace."""
    path = scope["path"]
    if path == "/hello":
        body, kind = b"hello", b"text/plain"
    elif path.startswith("/products/"):
        parse_id(path[len("/products/"):])
        body, kind = orjson.dumps(_PRODUCT), b"application/json"
    else:
        raise LookupError(path)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def framework_costs(*, repeat: int = 10, number: int = 200) -> dict[str, Comparison]:
    """In-process µs per request, per route: Nexios with its stream bridges, without (``ApiNexios``), bare ASGI."""
    apps = {"Nexios with bridges": _api_nexios(bridges=True), "Nexios, no bridges": _api_nexios(bridges=False),
            "bare ASGI": _bare_api}
    out = {}
    for path in ("/hello", "/products/7"):
        variants: dict[str, Callable[[], Awaitable[None]]] = {
            name: functools.partial(_asgi_get, app, path) for name, app in apps.items()}
        out[path] = await compare_async(variants, warmup=1, repeat=repeat, number=number, baseline="bare ASGI")
    return out


def print_framework_costs(costs: dict[str, Comparison]) -> None:
    """Print :func:`framework_costs`: median µs [q1, q3] and the per-round ratio to bare ASGI."""
    print("  in-process cost per request (median us [q1, q3]; ratio to bare ASGI, per-round median):")
    for path, comparison in costs.items():
        for name, row in comparison.summary().iterrows():
            spread = f"[{row['q1'] * 1e6:.1f}, {row['q3'] * 1e6:.1f}]"
            print(f"    GET {path:12s} {name:20s} {row['median'] * 1e6:7.1f} us {spread:18s} "
                  f"x{row['ratio_to_baseline']:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures (see the module docstring)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=settings.pick(3, 5))
    parser.add_argument("--duration", type=float, default=settings.pick(2.0, 10.0), help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--products", type=int, default=settings.pick(2_000, 100_000))
    parser.add_argument("--ids", type=int, default=1_000, help="distinct product ids requested")
    parser.add_argument("--in-process", action="store_true", help="only the in-process framework costs (seconds)")
    args = parser.parse_args(argv)
    if args.in_process:
        print_framework_costs(asyncio.run(framework_costs(repeat=settings.pick(12, 30), number=200)))
        return 0
    load = run_wrk if shutil.which("wrk") else run_asyncio_client
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, client_cpu = ([cores[0]], [cores[1]]) if len(cores) >= 2 else (None, None)
    with ensure_services(settings) as services:
        def api(mode: str) -> ApiSettings:
            return ApiSettings(database_url=services.database_url, redis_url=services.redis_url, schema=SCHEMA,
                               products=args.products, mode=ApiMode.parse(mode), cache_namespace=f"{SCHEMA}:{mode}")

        with ApiServer(api("all"), cpu=server_cpu) as cached, \
                ApiServer(api("all,-fastpath"), cpu=server_cpu) as routed, \
                ApiServer(api("all,-cache"), cpu=server_cpu) as uncached:
            variants = {
                "cached GET /products/{id}": (cached.url + "/products/1", args.ids),
                "cached, via Nexios": (routed.url + "/products/1", args.ids),
                "uncached GET /products/{id}": (uncached.url + "/products/1", args.ids),
                "Nexios GET /hello": (cached.url + "/hello", None),
                "bare ASGI GET /bare/hello": (cached.url + "/bare/hello", None),
            }
            for server in (cached, routed):  # every id once: the cached runs measure hits, not misses
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    for pid in range(1, args.ids + 1):
                        client.get(f"/products/{pid}").raise_for_status()
            for url, ids in variants.values():  # warm-up: pools open, code paths hot
                load(url, duration=1, connections=args.connections, ids=ids, cpu=client_cpu)
            rows = []
            for round_ in range(args.rounds):
                for name, (url, ids) in variants.items():
                    result = load(url, duration=args.duration, connections=args.connections, ids=ids, cpu=client_cpu)
                    rows.append({"round": round_, "variant": name, "rps": result.rps, "p50_ms": result.p50 * 1e3,
                                 "p99_ms": result.p99 * 1e3, "errors": result.errors})
    frame = pd.DataFrame(rows)
    info = machine_info()
    print(f"perf.bench.api: load={load.__name__} server cpu={server_cpu} client cpu={client_cpu} "
          f"rounds={args.rounds} x {args.duration:.0f}s, {args.connections} connections, "
          f"{args.products} products, {args.ids} ids; python {info.get('python', '?')}")
    rps = summarize(frame, value="rps")
    p50 = summarize(frame, value="p50_ms")
    p99 = summarize(frame, value="p99_ms")
    for name in variants:
        print(f"  {name:30s} {rps.loc[name, 'median']:9.0f} req/s [q1 {rps.loc[name, 'q1']:.0f}, "
              f"q3 {rps.loc[name, 'q3']:.0f}]  p50 {p50.loc[name, 'median']:6.2f} ms  "
              f"p99 {p99.loc[name, 'median']:6.2f} ms  errors {int(frame[frame.variant == name].errors.sum())}")
    wide = frame.pivot(index="round", columns="variant", values="rps")
    speedup = (wide["cached GET /products/{id}"] / wide["uncached GET /products/{id}"])
    verdict = "MET" if speedup.median() >= TARGET_CACHE_SPEEDUP else "NOT MET"
    print(f"  cache speedup (per-round cached/uncached req/s): median {speedup.median():.1f}x "
          f"[min {speedup.min():.1f}x, max {speedup.max():.1f}x]; target >= {TARGET_CACHE_SPEEDUP:.0f}x: {verdict}")
    routed = wide["cached, via Nexios"] / wide["uncached GET /products/{id}"]
    print(f"  cache speedup with every request routed through Nexios (mode all,-fastpath): median "
          f"{routed.median():.1f}x [min {routed.min():.1f}x, max {routed.max():.1f}x]")
    tax = (1 / wide["Nexios GET /hello"] - 1 / wide["bare ASGI GET /bare/hello"]) * 1e6
    ratio = wide["bare ASGI GET /bare/hello"] / wide["Nexios GET /hello"]
    print(f"  framework tax: bare ASGI serves {ratio.median():.1f}x the req/s of Nexios; "
          f"Nexios adds ~{tax.median():.0f} us of server time per request (median of rounds, "
          f"includes the API's timing/limit/error/compression ASGI layers)")
    print_framework_costs(asyncio.run(framework_costs(repeat=settings.pick(12, 30), number=200)))
    costs = asyncio.run(layer_costs(repeat=settings.pick(12, 30), number=100)).summary()
    base = costs.loc["no layer", "median"]
    print("  in-process cost per request of a timing layer around Nexios GET /hello (median, us; the "
          "difference uses the per-round paired ratio to 'no layer'):")
    for name, row in costs.iterrows():
        delta = (row["ratio_to_baseline"] - 1.0) * base * 1e6
        extra = "" if name == "no layer" else f"  ({delta:+.0f} us, x{row['ratio_to_baseline']:.2f} vs no layer)"
        spread = f"[q1 {row['q1'] * 1e6:.1f}, q3 {row['q3'] * 1e6:.1f}]"
        print(f"    {name:22s} {row['median'] * 1e6:7.1f} us {spread}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

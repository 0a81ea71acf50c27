"""Benchmark the product API per route: Nexios against the same logic on bare ASGI, in process and under load.

``python -m perf.bench.api [--rounds N] [--duration S] [--connections C] [--driver D] [--in-process]``

**In process** (:mod:`perf.api.demo_framework`: the app called as ASGI, no sockets), for
every product route (``GET /products/{id}`` and ``GET /products?page=1`` from the L1 cache,
``PATCH``, ``POST`` + ``DELETE`` committed in PostgreSQL) and ``GET /hello``: µs per request
through Nexios as it ships (its two stream bridges and handler wrapper), through this
API's lean Nexios path, and through the same routes as bare ASGI (``/bare/...``: same
layers, same service); target: lean Nexios <= 2x bare on every product route. Then what
each pure ASGI layer adds.

**Under load** (1 uvicorn worker pinned to half the cores, :func:`perf.load.run_load`'s
built-in driver, calibrated against wrk by :mod:`perf.bench.load`, pinned to the other half;
closed model, ``--connections`` users): req/s and p50/p99 of the cached reads
through Nexios and as bare ASGI on the same server, ``GET /products/{id}`` through
Nexios' default path (mode ``all``, ``nexios_lean=False``), uncached (mode ``all,-cache``),
and ``/hello`` vs ``/bare/hello``. Variants run in interleaved rounds (A B C..., ...C B A)
so machine noise and cache refills hit all alike; ratios are per round. Target: cached
``GET /products?page=1`` >= 0.8x its bare twin.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import os
import random
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import httpx
import pandas as pd

from perf.api.demo_framework import LEAN, framework_apps, framework_costs, layer_costs
from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings
from perf.bench import rounds_verdict
from perf.bench.starlette_twin import STARLETTE, TwinServer, starlette_available
from perf.config import get_settings
from perf.load.drivers import DRIVERS, run_wrk
from perf.load.models import ClosedModel
from perf.load.runner import run_load
from perf.load.scale import run_event_loop
from perf.load.scenarios import Endpoint, Scenario
from perf.measure import machine_info, summarize
from perf.services import ensure_services
from perf.services.cpu import pin_process, split_cores
from perf.services.server_process import ServerProcess

SCHEMA = "bench_api"
TARGET_IN_PROCESS = 2.0  # lean Nexios / bare ASGI, in-process time per request, every product route
TARGET_UNDER_LOAD = 0.8  # lean Nexios / bare ASGI req/s, cached GET /products?page=1
TARGET_LAYER_US = 3.0  # what each pure ASGI layer adds to a cached read, in process (issue #29)
TARGET_STARLETTE = 0.9  # the product / the same logic on bare Starlette, req/s, both cached routes (issue #29)
STARLETTE_ITEM, STARLETTE_PAGE = "GET /products/{id}, bare Starlette", "GET /products?page=1, bare Starlette"


def _product_path(prefix: str, ids: int, rng: random.Random) -> str:
    return f"{prefix}{rng.randint(1, ids)}"


def scenario(target: str, ids: int | None = None, *, driver: str = "builtin") -> Scenario | str:
    """``GET target`` (``ids``: ``GET <target>1..ids``, drawn at random; for wrk, which sends one URL,
    ``<target>1``)."""
    if driver == "wrk":
        return target if ids is None else f"{target}1"
    if ids is None:
        return Scenario.single(target)
    return Scenario([Endpoint(f"GET {target}{{id}}", functools.partial(_product_path, target, ids))])


def measure_load(base_url: str, scn: Scenario | str, *, duration: float, connections: int,
                 driver: str = "builtin") -> dict[str, float]:
    """One closed-model run of ``scn`` through :func:`perf.load.run_load`: req/s, p50 and p99 (ms), errors.

    ``driver="wrk"``: ``scn`` is one path, sent by ``wrk`` (C, one thread; it inherits this
    process' cores) for ``duration`` seconds rounded to a whole second. ``errors`` counts every
    request that got no 2xx answer (any other status, a transport failure, a give-up).
    """
    if driver == "wrk":
        if not isinstance(scn, str):
            raise TypeError(f"wrk sends one path: pass it as a str, not {scn!r}")
        result = run_event_loop(run_wrk(base_url + scn, connections=connections, duration=max(duration, 1.0)))
    else:
        if isinstance(scn, str):
            scn = Scenario.single(scn)
        result = run_event_loop(run_load(base_url, model=ClosedModel(users=connections, duration=duration),
                                          scenario=scn, driver=driver))
    ok = sum(n for status, n in result.status_counts.items() if 200 <= status < 300)
    latency = result.overall()
    return {"rps": result.throughput, "p50_ms": latency.percentile(50) * 1e3,
            "p99_ms": latency.percentile(99) * 1e3, "errors": result.scheduled - ok}


def print_in_process(costs: pd.DataFrame, layers: pd.DataFrame) -> None:
    """Print :func:`~perf.api.demo_framework.framework_costs` and :func:`~perf.api.demo_framework.layer_costs`."""
    print("  in process, no sockets (median us per request [q1, q3]; x = per-round median ratio to bare ASGI):")
    for route, group in costs.groupby("route", sort=False):
        cells = "  ".join(f"{row.variant} {row.median_us:7.1f} [{row.q1_us:.1f}, {row.q3_us:.1f}] "
                          f"x{row.ratio_to_bare:.2f}" for row in group.itertuples())
        print(f"    {route:24s} {cells}")
    lean = costs[(costs.variant == LEAN) & costs.route.str.contains("/products")]
    worst = lean.loc[lean.ratio_to_bare.idxmax()]
    verdict = "MET" if worst.ratio_to_bare <= TARGET_IN_PROCESS else "NOT MET"
    print(f"  lean Nexios / bare ASGI on every product route: at most x{worst.ratio_to_bare:.2f} "
          f"({worst.route}); target <= x{TARGET_IN_PROCESS:.0f}: {verdict}")
    print("  in process, cached GET /products/7 with Accept-Encoding, stack by stack: the stack's median us "
          "[q1, q3], then what the piece adds (median [q1, q3] of per-round differences):")
    for row in layers.itertuples():
        print(f"    {row.layer:40s} {row.median_us:7.1f} [{row.q1_us:.1f}, {row.q3_us:.1f}]  "
              f"{row.added_us:+6.1f} us [{row.added_q1_us:+.1f}, {row.added_q3_us:+.1f}]")
    print(f"  each layer <= {TARGET_LAYER_US:.0f} us on this read (its body is too small to compress): "
          + layer_verdicts(layers))


def layer_verdicts(layers: pd.DataFrame, *, target: float = TARGET_LAYER_US) -> str:
    """``"timing NOT MET, ..."`` for each pure ASGI layer of :func:`~perf.api.demo_framework.layer_costs`.

    MET when the upper quartile of what it adds is within ``target`` µs, NOT MET when the lower
    quartile is over it, inconclusive when the target falls inside its spread.

    >>> frame = pd.DataFrame({"layer": ["Nexios app", "+ timing", "+ body limit", "+ error boundary"],
    ...                       "added_q1_us": [60.0, 5.0, 1.0, 2.0], "added_q3_us": [70.0, 7.0, 2.0, 4.0]})
    >>> layer_verdicts(frame)
    'timing NOT MET, body limit MET, error boundary inconclusive'
    """
    verdicts = []
    for row in layers[layers.layer.str.startswith("+ ")].itertuples():
        verdict = ("MET" if row.added_q3_us <= target else "NOT MET" if row.added_q1_us > target
                   else "inconclusive")
        verdicts.append(f"{row.layer.removeprefix('+ ')} {verdict}")
    return ", ".join(verdicts)


async def in_process(api: ApiSettings, *, repeat: int, number: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both in-process tables for ``api`` (see :mod:`perf.api.demo_framework`)."""
    async with framework_apps(api) as apps:
        costs = await framework_costs(apps, repeat=repeat, number=number, write_number=max(number // 20, 5))
        layers = await layer_costs(apps, repeat=repeat, number=number)
    return costs, layers


def _ratio(wide: pd.DataFrame, a: str, b: str) -> str:
    ratio = wide[a] / wide[b]
    return f"median x{ratio.median():.2f} [min x{ratio.min():.2f}, max x{ratio.max():.2f}]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures (see the module docstring)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=settings.pick(3, 5))
    parser.add_argument("--duration", type=float, default=settings.pick(2.0, 10.0), help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--products", type=int, default=settings.pick(2_000, 100_000))
    parser.add_argument("--ids", type=int, default=1_000, help="distinct product ids requested")
    parser.add_argument("--driver", choices=[*sorted(DRIVERS), "wrk"], default="builtin",
                        help="perf.load driver, or wrk (C; one path per variant: /products/1 for the item)")
    parser.add_argument("--in-process", action="store_true", help="only the in-process framework costs (seconds)")
    args = parser.parse_args(argv)
    with ensure_services(settings) as services:
        def api(mode: str) -> ApiSettings:
            return ApiSettings(database_url=services.database_url, redis_url=services.redis_url, schema=SCHEMA,
                               products=args.products, mode=ApiMode.parse(mode), cache_namespace=f"{SCHEMA}:{mode}")

        costs, layers = asyncio.run(in_process(api("all"), repeat=settings.pick(8, 20), number=200))
        if args.in_process:
            print(f"perf.bench.api --in-process: python {machine_info().get('python', '?')}")
            print_in_process(costs, layers)
            return 0
        server_cores, client_cpu = split_cores()
        server_cpu = sorted(server_cores)
        pin_process(os.getpid(), client_cpu)  # the generator off the server's cores (same cores on one core)
        lean_settings = dataclasses.replace(api("all"), bare_routes=True)  # /bare/...: the baseline without Nexios
        default_settings = dataclasses.replace(api("all"), nexios_lean=False, cache_namespace=f"{SCHEMA}:default")
        with ExitStack() as servers:
            lean = servers.enter_context(ApiServer(lean_settings, cpu=server_cpu))
            default = servers.enter_context(ApiServer(default_settings, cpu=server_cpu))
            uncached = servers.enter_context(ApiServer(api("all,-cache"), cpu=server_cpu))
            on_granian = servers.enter_context(ApiServer(api("all"), cpu=server_cpu, server="granian"))
            def target(path: str, ids: int | None = None) -> Scenario | str:
                return scenario(path, ids, driver=args.driver)

            variants = {
                "GET /products/{id}": (lean.url, target("/products/", args.ids)),
                "GET /bare/products/{id}": (lean.url, target("/bare/products/", args.ids)),
                "GET /products?page=1": (lean.url, target("/products?page=1")),
                "GET /bare/products?page=1": (lean.url, target("/bare/products?page=1")),
                "GET /products/{id}, Nexios default": (default.url, target("/products/", args.ids)),
                "GET /products/{id}, uncached": (uncached.url, target("/products/", args.ids)),
                "GET /hello": (lean.url, target("/hello")),
                "GET /bare/hello": (lean.url, target("/bare/hello")),
                "GET /products/{id}, granian": (on_granian.url, target("/products/", args.ids)),
                "GET /products?page=1, granian": (on_granian.url, target("/products?page=1")),
            }
            warmed: list[ServerProcess] = [lean, default, on_granian]
            if starlette_available():
                twin = servers.enter_context(TwinServer(api("all"), cpu=server_cpu))
                variants[STARLETTE_ITEM] = (twin.url, target("/products/", args.ids))
                variants[STARLETTE_PAGE] = (twin.url, target("/products?page=1"))
                warmed.append(twin)
            else:
                print(f"perf.bench.api: Starlette is not installed, so no bare-Starlette yardstick "
                      f"(pip install {STARLETTE})", file=sys.stderr)
            for server in warmed:  # every id once: the cached runs measure hits, not misses
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    for pid in range(1, args.ids + 1):
                        client.get(f"/products/{pid}").raise_for_status()
                    client.get("/products?page=1").raise_for_status()
            for url, scn in variants.values():  # warm-up: pools open, code paths hot
                measure_load(url, scn, duration=1, connections=args.connections, driver=args.driver)
            rows = []
            for round_ in range(args.rounds):
                # every other round backwards: each Nexios route and its bare twin take turns going first
                # (the first to run after the L1 entries expired, every 30 s, pays for refilling them)
                for name in list(variants) if round_ % 2 == 0 else list(variants)[::-1]:
                    url, scn = variants[name]
                    figures = measure_load(url, scn, duration=args.duration, connections=args.connections,
                                           driver=args.driver)
                    rows.append({"round": round_, "variant": name, **figures})
    frame = pd.DataFrame(rows)
    info = machine_info()
    print(f"perf.bench.api: load=perf.load.run_load, driver {args.driver}; server cpu={server_cpu} "
          f"client cpu={sorted(client_cpu)} rounds={args.rounds} x {args.duration:.0f}s, "
          f"{args.connections} connections, "
          f"{args.products} products, {args.ids} ids; python {info.get('python', '?')}")
    print_in_process(costs, layers)
    print("  under load (req/s median [q1, q3], p50/p99 medians of rounds):")
    rps = summarize(frame, value="rps")
    p50 = summarize(frame, value="p50_ms")
    p99 = summarize(frame, value="p99_ms")
    for name in variants:
        print(f"    {name:36s} {rps.loc[name, 'median']:8.0f} req/s [{rps.loc[name, 'q1']:.0f}, "
              f"{rps.loc[name, 'q3']:.0f}]  p50 {p50.loc[name, 'median']:6.2f} ms  "
              f"p99 {p99.loc[name, 'median']:6.2f} ms  errors {int(frame[frame.variant == name].errors.sum())}")
    wide = frame.pivot(index="round", columns="variant", values="rps")
    page = wide["GET /products?page=1"] / wide["GET /bare/products?page=1"]
    verdict = "MET" if page.median() >= TARGET_UNDER_LOAD else "NOT MET"
    item, lean_default = "GET /products/{id}", "GET /products/{id}, Nexios default"
    print("  cached GET /products?page=1, Nexios / bare ASGI req/s: "
          + _ratio(wide, "GET /products?page=1", "GET /bare/products?page=1")
          + f"; target >= x{TARGET_UNDER_LOAD}: {verdict}")
    print("  cached GET /products/{id}, Nexios / bare ASGI req/s: " + _ratio(wide, item, "GET /bare/products/{id}"))
    print("  GET /products/{id}, lean / Nexios default path req/s: " + _ratio(wide, item, lean_default))
    # No target: once every read goes through the server's fixed per-request cost (HTTP parsing, layers,
    # framework: ~1/bare-hello req/s), caching a ~0.1 ms query cannot multiply req/s; its latency table shows it.
    print("  cache speedup, cached / uncached GET /products/{id} req/s: "
          + _ratio(wide, item, "GET /products/{id}, uncached")
          + f" (a bare ASGI hello on this server costs {1e6 / rps.loc['GET /bare/hello', 'median']:.0f} us a request)")
    print("  GET /hello, Nexios / bare ASGI req/s: " + _ratio(wide, "GET /hello", "GET /bare/hello"))
    if STARLETTE_ITEM in wide:
        for ours, theirs in (("GET /products/{id}", STARLETTE_ITEM), ("GET /products?page=1", STARLETTE_PAGE)):
            ratio = wide[ours] / wide[theirs]
            verdict = rounds_verdict(ratio, TARGET_STARLETTE, at_least=True)
            print(f"  cached {ours}, the product / the same logic on bare Starlette req/s: "
                  f"{_ratio(wide, ours, theirs)}; target >= x{TARGET_STARLETTE}: {verdict} "
                  "(MET or NOT MET only when every round's ratio is on one side of it)")
    for route in ("GET /products/{id}", "GET /products?page=1"):
        print(f"  cached {route}, granian / uvicorn req/s (the product, mode all): "
              + _ratio(wide, f"{route}, granian", route))
    return 0


if __name__ == "__main__":
    sys.exit(main())

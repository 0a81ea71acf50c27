"""What a product write's guarantees cost it: settling a cut-off commit, and waiting for the other workers.

``python -m perf.bench.writes [--rounds N] [--number N] [--load-rounds N] [--duration S] [--rate R] [--in-process]``

**The transaction id** (in process, no HTTP): :meth:`ProductService.update
<perf.api.products.ProductService.update>` (a PATCH's work: its transaction, the Redis
invalidation, the NOTIFY) on three paths: before (one transaction, nothing learned: a cut is
a 503), :meth:`Database.write <perf.api.database.Database.write>` learning the transaction id
with a statement of its own (``SELECT pg_current_xact_id()``: what a write without the
PostgreSQL bus pays), and as shipped (the id selected by the NOTIFY statement the write runs
anyway). Interleaved rounds (:func:`perf.measure.compare_async`); µs a write and the
per-round ratio to the path before.

**The acknowledgement wait** (under load: PATCH only, an open model at ``--rate`` req/s through
:func:`perf.load.run_load`, server pinned to half the cores, generator to the other half): a
write answers once every other worker listening on PostgreSQL has acknowledged its
invalidation (:mod:`perf.cache.pg_invalidation`). One worker has no one to wait for, two
have; but two workers also differ from one in ways that have nothing to do with the wait
(two event loops on the same cores, the load split). So four servers, in interleaved rounds:
1 or 2 workers, with the PostgreSQL bus (``cache_pg_notify``, the default) or without it.
Only "2 workers, bus on" waits for an acknowledgement; the difference of differences,
``(2 on - 2 off) - (1 on - 1 off)``, keeps the wait (and the peer's listening work it waits
on) and cancels both the second worker's cost and the NOTIFY statement's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import statistics
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, ExitStack
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import pandas as pd

from perf.api.app import prepare_schema
from perf.api.database import Database
from perf.api.products import ProductService
from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings
from perf.cache.multilevel import MultiLevelCache
from perf.cache.pg_invalidation import PgInvalidationBus
from perf.config import get_settings
from perf.load.models import OpenModel
from perf.load.product import item_path, price_body
from perf.load.runner import run_load
from perf.load.scale import run_event_loop
from perf.load.scenarios import Endpoint, Scenario
from perf.measure import Comparison, compare, compare_async, machine_info
from perf.services import ensure_services
from perf.services.cpu import pin_process, split_cores

SCHEMA = "bench_writes"
T = TypeVar("T")
WITHOUT_XID = "before: one transaction, no xid"
XID_STATEMENT = "xid in a statement of its own"
WITH_XID = "xid in the NOTIFY (as shipped)"
#: (label, workers, cache_pg_notify) of the acknowledgement comparison
ACK_VARIANTS = (("1 worker, bus on", 1, True), ("1 worker, bus off", 1, False),
                ("2 workers, bus on", 2, True), ("2 workers, bus off", 2, False))


class WithoutXid(Database):
    """The write path before :meth:`Database.write` settled cut-off commits: one transaction, no
    transaction id, a cut connection is a 503. For measuring only; the API never uses it."""

    async def write(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    xid_of: Callable[[T], int | None] | None = None) -> T:
        """``await work(conn)`` in one transaction, nothing more (``xid_of`` ignored)."""
        async with self.connection() as conn, conn.transaction():
            return await work(conn)


class XidStatement(Database):
    """:meth:`Database.write` learning the transaction id with a statement of its own, as it does
    for a write that selects none (mode ``all,-cache``: no NOTIFY). For measuring only."""

    async def write(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    xid_of: Callable[[T], int | None] | None = None) -> T:
        """:meth:`Database.write` without ``xid_of``."""
        return await super().write(work)


async def xid_cost(database_url: str, redis_url: str, *, products: int = 200, repeat: int = 15,
                   number: int = 50, schema: str = SCHEMA, namespace: str = f"{SCHEMA}:xid") -> Comparison:
    """Seconds per ``ProductService.update`` (a price change) on each write path (:class:`WithoutXid`,
    :class:`XidStatement`, :meth:`Database.write`), ``repeat`` interleaved rounds of ``number`` writes
    each (mode ``all``, one process; ``products`` seeded in ``schema``, cache keys under ``namespace``)."""
    await prepare_schema(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                     products=products))
    async with AsyncExitStack() as stack:
        cache = await stack.enter_async_context(MultiLevelCache(redis_url, namespace=namespace))
        bus = await stack.enter_async_context(PgInvalidationBus(database_url, cache))
        services = {}
        for name, kind in ((WITHOUT_XID, WithoutXid), (XID_STATEMENT, XidStatement), (WITH_XID, Database)):
            db = await stack.enter_async_context(kind(database_url, schema=schema))
            services[name] = ProductService(db, cache, ApiMode.parse("all"), bus=bus)
        rng = random.Random(0)

        def patch(service: ProductService) -> Callable[[], Awaitable[Any]]:
            def call() -> Awaitable[Any]:
                price = Decimal(rng.randint(100, 50_000)) / 100
                return service.update(rng.randint(1, products), {"price": price})
            return call

        comparison = await compare_async({name: patch(s) for name, s in services.items()}, warmup=2,
                                         repeat=repeat, number=number, baseline=WITHOUT_XID)
        await cache.clear()
    return comparison


def patch_scenario(token: str, products: int) -> Scenario:
    """PATCH a random product's price, with the server's write token."""
    return Scenario([Endpoint("write", functools.partial(item_path, products=products), method="PATCH",
                              body=price_body, headers={"content-type": "application/json",
                                                        "authorization": f"Bearer {token}"})])


def measure_patches(url: str, scn: Scenario, *, rate: float, duration: float) -> dict[str, float]:
    """One open-model run: PATCH p50/p99 (ms, from each request's scheduled time) and non-2xx answers."""
    result = run_event_loop(run_load(url, model=OpenModel(rate=rate, duration=duration, connections=32),
                                     scenario=scn))
    ok = sum(n for status, n in result.status_counts.items() if 200 <= status < 300)
    latency = result.overall()
    return {"p50_ms": latency.percentile(50) * 1e3, "p99_ms": latency.percentile(99) * 1e3,
            "errors": result.scheduled - ok}


def ack_cost(database_url: str, redis_url: str, *, products: int = 2_000, rounds: int = 3, duration: float = 8.0,
             rate: float = 100.0) -> pd.DataFrame:
    """PATCH p50/p99 on the four servers of :data:`ACK_VARIANTS`, ``rounds`` interleaved rounds
    (every other one backwards); one row per round and variant, with the writes that gave up
    waiting for an acknowledgement (1 s) during the run."""
    server_cores, client_cpu = split_cores()
    server_cpu = sorted(server_cores)
    pin_process(os.getpid(), client_cpu)
    with ExitStack() as stack:
        servers: dict[str, ApiServer] = {}
        for label, workers, notify in ACK_VARIANTS:
            # a cache namespace of its own: servers sharing one would listen on one channel and wait for each other
            settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=SCHEMA, products=products,
                                   cache_namespace=f"{SCHEMA}:{workers}w:{'on' if notify else 'off'}",
                                   cache_pg_notify=notify)
            servers[label] = stack.enter_context(ApiServer(settings, workers=workers, cpu=server_cpu))
        scenarios = {label: patch_scenario(server.token, products) for label, server in servers.items()}
        for label, server in servers.items():  # warm-up: pools open, both workers listening, code paths hot
            measure_patches(server.url, scenarios[label], rate=rate, duration=1.0)
        rows = []
        for round_ in range(rounds):
            order = list(servers) if round_ % 2 == 0 else list(servers)[::-1]
            for label in order:
                before = _ack_timeouts(servers[label])
                figures = measure_patches(servers[label].url, scenarios[label], rate=rate, duration=duration)
                rows.append({"round": round_, "variant": label, **figures,
                             "ack_timeouts": _ack_timeouts(servers[label]) - before})
    return pd.DataFrame(rows)


def _ack_timeouts(server: ApiServer) -> int:
    """Writes of ``server`` that gave up waiting for an acknowledgement so far (its log's warnings)."""
    return server.log(limit=10_000_000).count("no acknowledgement of invalidation")


def _spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def print_xid_cost(comparison: Comparison) -> None:
    """µs a write on each path, the per-round added µs and ratio to the path before, and the verdicts."""
    wide = comparison.samples.pivot(index="round", columns="variant", values="seconds") * 1e6
    print(f"  the transaction id step, in process (ProductService.update, mode all; {len(wide)} interleaved rounds;"
          " median [min, max] over rounds):")
    for name in (WITHOUT_XID, XID_STATEMENT, WITH_XID):
        line = f"    {name:32s} {_spread(list(wide[name]), '{:.0f}')} us a write"
        if name != WITHOUT_XID:
            added, ratio = list(wide[name] - wide[WITHOUT_XID]), list(wide[name] / wide[WITHOUT_XID])
            line += f"; added {_spread(added, '{:+.0f}')} us, x{_spread(ratio, '{:.3f}')}"
        print(line)
    for name in (XID_STATEMENT, WITH_XID):
        print(f"    {comparison.verdict(name, WITHOUT_XID)}")


def print_ack_cost(frame: pd.DataFrame, *, rate: float, duration: float) -> None:
    """Each variant's PATCH p50/p99, the two 2-vs-1 differences and the difference of differences, per round."""
    print(f"  the acknowledgement wait, under load (PATCH only, open model {rate:g} req/s, {duration:g} s a run, "
          f"{frame['round'].nunique()} interleaved rounds; median [min, max] over rounds):")
    for label, _, _ in ACK_VARIANTS:
        rows = frame[frame.variant == label]
        print(f"    {label:20s} p50 {_spread(list(rows.p50_ms))} ms  p99 {_spread(list(rows.p99_ms))} ms  "
              f"non-2xx {int(rows.errors.sum())}, acknowledgements given up on {int(rows.ack_timeouts.sum())}")
    for value in ("p50_ms", "p99_ms"):
        wide = frame.pivot(index="round", columns="variant", values=value)
        on = wide["2 workers, bus on"] - wide["1 worker, bus on"]
        off = wide["2 workers, bus off"] - wide["1 worker, bus off"]
        name = value.removesuffix("_ms")
        print(f"    {name}: 2 - 1 workers, bus on {_spread(list(on), '{:+.2f}')} ms; bus off "
              f"{_spread(list(off), '{:+.2f}')} ms; difference (the wait) {_spread(list(on - off), '{:+.2f}')} ms")
        print("      " + str(compare(list(wide["2 workers, bus on"]), list(wide["2 workers, bus off"]),
                                     a="2 workers with the bus", b="2 workers without")))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures (see the module docstring)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=settings.pick(9, 25), help="in-process rounds (>= 5)")
    parser.add_argument("--number", type=int, default=50, help="writes a variant makes per in-process round")
    parser.add_argument("--load-rounds", type=int, default=settings.pick(3, 5), help="rounds under load (>= 3)")
    parser.add_argument("--duration", type=float, default=settings.pick(6.0, 15.0), help="seconds per load run")
    parser.add_argument("--rate", type=float, default=100.0, help="PATCH requests a second under load")
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--in-process", action="store_true", help="only the transaction id step (seconds)")
    args = parser.parse_args(argv)
    for name, value, low in (("--rounds", args.rounds, 5), ("--load-rounds", args.load_rounds, 3)):
        if value < low:
            parser.error(f"{name}={value} must be >= {low}: a spread needs rounds")
    with ensure_services(settings) as services:
        comparison = asyncio.run(xid_cost(services.database_url, services.redis_url, products=args.products,
                                          repeat=args.rounds, number=args.number))
        frame = None if args.in_process else ack_cost(services.database_url, services.redis_url,
                                                      products=args.products, rounds=args.load_rounds,
                                                      duration=args.duration, rate=args.rate)
    print(f"perf.bench.writes: python {machine_info().get('python', '?')}, {args.products} products")
    print_xid_cost(comparison)
    if frame is not None:
        print_ack_cost(frame, rate=args.rate, duration=args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())

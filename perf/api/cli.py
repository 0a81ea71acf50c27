"""``python -m perf api [--workers N] [--port P] [--mode MODE] ...``: serve the product API with uvicorn or granian.

URLs default to the workbook's settings (``DATABASE_URL``/``REDIS_URL``) or the embedded
services (started if needed and kept for the server's lifetime). Several workers share
PostgreSQL and Redis; each has its own pool, L1 cache and task queue, and the cache's
pub/sub keeps their L1s coherent. uvicorn runs with uvloop + httptools, no access log;
``--server granian`` runs granian with ``interface=asgi`` (``nexios run --server granian``
is broken: it omits the interface, and granian defaults to RSGI).

Workers are separate processes started by uvicorn from an import string, so the CLI
hands them the settings as JSON in ``PERF_API_SETTINGS`` (read only by :func:`worker_app`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

from perf.api.settings import SWITCHES, ApiMode, ApiSettings

SETTINGS_ENV = "PERF_API_SETTINGS"


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m perf api`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m perf api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn",
                        help="ASGI server (granian: interface asgi, which `nexios run --server granian` omits)")
    parser.add_argument("--mode", default="all",
                        help=f"'all', 'baseline' or e.g. 'all,-cache' / 'baseline,+pool'; switches: {', '.join(SWITCHES)}")
    parser.add_argument("--schema", default="api", help="PostgreSQL schema for the product tables (default api)")
    parser.add_argument("--products", type=int, default=0, help="insert this many generated products at startup (once)")
    parser.add_argument("--cache-namespace", default="api", help="Redis key prefix / channel of the cache")
    parser.add_argument("--database-url", help="default: DATABASE_URL or the embedded PostgreSQL")
    parser.add_argument("--redis-url", help="default: REDIS_URL or the embedded Redis")
    parser.add_argument("--pool-max", type=int, default=10, help="pool size per worker (mode pool)")
    parser.add_argument("--upload-delay", type=float, default=0.01, help="seconds each upload task takes")
    parser.add_argument("--task-workers", type=int, default=4, help="upload task workers per worker process")
    parser.add_argument("--task-queue-size", type=int, default=1000,
                        help="unfinished uploads at most, across workers (then 429)")
    parser.add_argument("--task-lease", type=float, default=10.0,
                        help="seconds without a heartbeat before another worker takes a task over")
    parser.add_argument("--task-retention", type=float, default=3600.0, help="seconds finished task results are kept")
    parser.add_argument("--task-max-attempts", type=int, default=3, help="attempts before a task is dead")
    parser.add_argument("--task-drain", type=float, default=3.0,
                        help="seconds shutdown waits for running uploads before returning them to the queue")
    parser.add_argument("--shutdown-grace", type=float, default=1.0,
                        help="seconds after SIGTERM during which uploads answer 503 before the server stops")
    parser.add_argument("--log-level", default="warning")
    return parser


def worker_app():  # noqa: ANN201 - uvicorn factory
    """uvicorn ``--factory`` entry point for worker processes: the app from ``PERF_API_SETTINGS``.

    It also answers ``GET /bare/hello`` without Nexios (:mod:`perf.api.demo_bare`), for the framework tax.
    """
    from perf.api.app import create_app

    raw = json.loads(os.environ[SETTINGS_ENV])
    return create_app(ApiSettings(**raw))


def _serve_granian(args: argparse.Namespace) -> None:
    try:
        from granian import Granian
        from granian.constants import Interfaces, Loops
    except ImportError as exc:
        raise SystemExit("--server granian needs granian: pip install granian==2.8.7 (see requirements.txt)") from exc
    level = args.log_level if args.log_level in ("critical", "error", "warning", "info", "debug") else "warning"
    Granian("perf.api.cli:worker_app", factory=True, address=args.host, port=args.port,
            interface=Interfaces.ASGI, workers=args.workers, loop=Loops.uvloop, log_level=level).serve()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; returns the exit code."""
    import uvicorn

    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        mode = ApiMode.parse(args.mode)
    except ValueError as exc:
        print(f"error: --mode: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers={args.workers} must be >= 1", file=sys.stderr)
        return 2
    handle = None
    database_url, redis_url = args.database_url, args.redis_url
    if not database_url or not redis_url:
        from perf.config import get_settings
        from perf.services import ensure_services

        handle = ensure_services(get_settings())
        database_url = database_url or handle.database_url
        redis_url = redis_url or handle.redis_url
    try:
        settings = ApiSettings(database_url=database_url, redis_url=redis_url, mode=mode, schema=args.schema,
                               products=args.products, cache_namespace=args.cache_namespace,
                               pool_max=args.pool_max, pool_min=min(2, args.pool_max),
                               upload_delay=args.upload_delay, task_workers=args.task_workers,
                               task_queue_size=args.task_queue_size, task_lease=args.task_lease,
                               task_retention=args.task_retention, task_max_attempts=args.task_max_attempts,
                               task_drain=args.task_drain, shutdown_grace=args.shutdown_grace)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    payload = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    payload["mode"] = str(settings.mode)
    os.environ[SETTINGS_ENV] = json.dumps(payload)  # inherited by uvicorn's worker processes
    print(f"perf api: http://{args.host}:{args.port} mode={settings.mode} workers={args.workers} "
          f"schema={settings.schema}", flush=True)
    try:
        if args.server == "granian":
            _serve_granian(args)
        else:
            uvicorn.run("perf.api.cli:worker_app", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_level=args.log_level, access_log=False, loop="uvloop",
                        http="httptools", lifespan="on", timeout_graceful_shutdown=30)
    finally:
        if handle is not None:
            handle.close()
    return 0

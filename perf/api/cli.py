"""``python -m perf api [--workers N] [--port P] [--mode MODE] ...``: serve the product API with uvicorn or granian.

Every :class:`~perf.api.settings.ApiSettings` field is a flag (``cache_namespace`` is
``--cache-namespace``), derived from the dataclass, so defaults and help live in one
place; the flags of their own are the server's: ``--host``, ``--port``, ``--workers``,
``--server``, ``--log-level``. URLs default to the workbook's settings
(``DATABASE_URL``/``REDIS_URL``) or the embedded services (started if needed and kept
for the server's lifetime); the write token to ``PERF_API_TOKEN``, else a new random
one (printed). Several workers share PostgreSQL and Redis; each has its own pool, L1
cache and task queue, and the cache's pub/sub keeps their L1s coherent.

uvicorn runs with uvloop + httptools, no access log, no WebSocket support, and request
heads bounded in time and size (:mod:`perf.api.protocol`); ``--server granian`` runs granian with ``interface=asgi``
and its HTTP/1 ``header_read_timeout`` (``nexios run --server granian`` omits the
interface, and granian defaults to RSGI). Workers are separate processes started from
an import string, so the CLI hands them the settings as JSON in ``PERF_API_SETTINGS``
(read only by :func:`worker_app`).

Metrics: the CLI makes one directory per server for prometheus_client's multiprocess
files, sets ``PROMETHEUS_MULTIPROC_DIR`` to it before anything imports prometheus_client
(the library reads it once, at import) and removes it when the server exits; every worker
writes there, so ``/metrics`` on any worker reports the whole server (:mod:`perf.api.metrics`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from perf.api.settings import ApiSettings

if TYPE_CHECKING:
    from perf.api.app import ApiApp

SETTINGS_ENV = "PERF_API_SETTINGS"
TOKEN_ENV = "PERF_API_TOKEN"
#: prometheus_client's own variable: where each worker keeps its metrics' files.
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SERVERS = ("uvicorn", "granian")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: ``ApiSettings`` field annotation -> argparse ``type`` (``bool`` fields become ``--x/--no-x``).
_TYPES: dict[str, Any] = {"str": str, "str | None": str, "ApiMode": str, "int": int, "float": float}


def flag(name: str) -> str:
    """The CLI flag of the ``ApiSettings`` field ``name``: ``cache_namespace`` -> ``--cache-namespace``."""
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m perf api`` parser: the server's own flags, then one flag per ``ApiSettings`` field."""
    parser = argparse.ArgumentParser(prog="python -m perf api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--server", choices=SERVERS, default="uvicorn", help="ASGI server (default uvicorn)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
    group = parser.add_argument_group("settings (perf.api.settings.ApiSettings)")
    for f in dataclasses.fields(ApiSettings):
        text = f.metadata.get("help", "")
        if f.default is not dataclasses.MISSING and f.default not in (None, ""):
            text += f" (default {f.default})"
        kind = str(f.type)
        if kind == "bool":
            group.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        else:
            group.add_argument(flag(f.name), dest=f.name, type=_TYPES[kind], default=None, help=text)
    return parser


def settings_from_args(args: argparse.Namespace, **defaults: Any) -> ApiSettings:
    """``ApiSettings`` from the parsed flags; a flag not given keeps the field's default (or ``defaults``)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ApiSettings)
             if getattr(args, f.name, None) is not None}
    return ApiSettings(**{**defaults, **given})


def settings_argv(settings: ApiSettings, *, secrets: bool = True) -> list[str]:
    """The flags that rebuild ``settings`` in a child process (the inverse of :func:`settings_from_args`).

    ``secrets=False`` leaves out ``--api-token``: pass it in ``PERF_API_TOKEN`` instead, where
    other local users cannot read it from the process list.
    """
    argv: list[str] = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is None or (not secrets and f.name == "api_token"):
            continue
        if isinstance(value, bool):
            argv.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
        else:  # one "--flag=value" word: a value starting with "-" (a token may) stays a value
            argv.append(f"{flag(f.name)}={value}")
    return argv


def worker_app() -> ApiApp:
    """uvicorn/granian factory for worker processes: the app from ``PERF_API_SETTINGS``."""
    from perf.api.app import create_app

    return create_app(ApiSettings.from_json(os.environ[SETTINGS_ENV]), metrics_dir=os.environ.get(METRICS_ENV))


def _serve_granian(args: argparse.Namespace, settings: ApiSettings) -> None:
    try:
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings
    except ImportError as exc:
        raise SystemExit("--server granian needs granian: pip install granian==2.8.7 (see requirements.txt)") from exc
    Granian("perf.api.cli:worker_app", factory=True, address=args.host, port=args.port,
            interface=Interfaces.ASGI, workers=args.workers, loop=Loops.uvloop, log_level=args.log_level,
            http1_settings=HTTP1Settings(header_read_timeout=int(settings.read_timeout * 1000)),
            ).serve()


def serve_uvicorn(factory: str, *, host: str, port: int, workers: int = 1, log_level: str = "warning") -> None:
    """Serve the app that ``factory`` (``"module:function"``) returns under uvicorn as the product is served.

    uvloop, this API's bounded httptools protocol (:mod:`perf.api.protocol`), no access log, no
    websockets, a 5 s keep-alive and a 30 s graceful shutdown: ``python -m perf api`` and the
    benchmark's other apps (``perf.bench.starlette_twin``) run on exactly the same server.
    """
    import uvicorn

    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                access_log=False, loop="uvloop", http="perf.api.protocol:BoundedHttpProtocol", ws="none",
                lifespan="on", timeout_graceful_shutdown=30, timeout_keep_alive=5)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; returns the exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.workers < 1:
        print(f"error: --workers={args.workers} must be >= 1", file=sys.stderr)
        return 2
    # A fresh directory per server: counts from another server (or an earlier run) never mix in.
    metrics_dir = tempfile.mkdtemp(prefix="perf-api-metrics-")
    previous = os.environ.get(METRICS_ENV)
    os.environ[METRICS_ENV] = metrics_dir
    try:
        return _serve(args)
    finally:
        if previous is None:
            os.environ.pop(METRICS_ENV, None)
        else:
            os.environ[METRICS_ENV] = previous
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    handle = None
    defaults: dict[str, Any] = {}
    if os.environ.get(TOKEN_ENV):
        defaults["api_token"] = os.environ[TOKEN_ENV]
    if not args.database_url or not args.redis_url:
        from perf.config import get_settings
        from perf.services import ensure_services

        handle = ensure_services(get_settings())
        defaults.update(database_url=handle.database_url, redis_url=handle.redis_url)
    try:
        try:
            settings = settings_from_args(args, **defaults)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        os.environ[SETTINGS_ENV] = settings.to_json()  # inherited by the worker processes
        token_note = "" if args.api_token or "api_token" in defaults else f" write-token={settings.api_token}"
        print(f"perf api: http://{args.host}:{args.port} mode={settings.mode} workers={args.workers} "
              f"schema={settings.schema}{token_note}", flush=True)
        if args.server == "granian":
            _serve_granian(args, settings)
        else:
            serve_uvicorn("perf.api.cli:worker_app", host=args.host, port=args.port, workers=args.workers,
                          log_level=args.log_level)
    finally:
        if handle is not None:
            handle.close()
    return 0

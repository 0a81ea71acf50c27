"""Measuring apparatus: the syllabus' ``cache_key`` and ``@cached`` on a real Nexios route, bug by bug.

The syllabus decorates a route handler::

    @app.get("/users/{user_id}")
    @cached("user", expire=60)
    async def get_user(request, response, user_id): ...

:func:`seed_cache_key` and :func:`seed_cached` are its code as written (the global cache
made a parameter). :func:`serve_users` mounts a handler decorated by any of them on a real
Nexios app, sends requests through it in process (httpx's ASGI transport: the framework
runs for real, no socket) and counts what happened: statuses, how often the handler body
ran, how many keys reached Redis. Notebook 01 runs it three ways:

1. **as written**: Nexios passes path parameters as keyword arguments; ``cache_key`` takes
   none, so every request raises ``TypeError`` (a 500).
2. **the key patched** (:func:`seed_cached_keyed`), the ways a reader tries next: with every
   argument's ``str()`` it fails on the handler's ``Response`` (its ``str`` needs a response
   that does not exist yet); with the request and the path, every key is new (``str(request)``
   holds an object address); with the path only, the key repeats, but the value stored is
   the ``Response``, which pickle refuses and ``set`` swallows: nothing is ever cached.
3. **``perf.cache.cached``** on a data function the route calls: the key is
   ``user:{user_id}``, the value is the data, and ``functools.wraps`` keeps the handler's
   name, docstring and signature (the seed's ``wrapper`` loses them).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from nexios import NexiosApp
from nexios.http import Request, Response

from perf.cache.decorator import cached
from perf.cache.multilevel import MultiLevelCache
from perf.cache.naive import CacheManager

Handler = Callable[..., Awaitable[Any]]
Decorate = Callable[[Handler], Handler]


def seed_cache_key(prefix: str, *args: Any) -> str:
    """Generate cache key from arguments (the syllabus' code, as written)."""
    key_parts = [prefix] + [str(arg) for arg in args]
    return hashlib.md5(":".join(key_parts).encode()).hexdigest()


def seed_cached(cache: CacheManager, prefix: str, expire: int = 300) -> Decorate:
    """The syllabus' ``@cached`` as written (``cache`` was a module global there)."""
    def decorator(func: Handler) -> Handler:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = seed_cache_key(prefix, *args, **kwargs)  # the bug: keyword arguments raise TypeError
            cached_value = await cache.get(key)
            if cached_value is not None:
                return cached_value
            value = await func(*args, **kwargs)
            await cache.set(key, value, expire)
            return value
        return wrapper
    return decorator


KeyFrom = Literal["all values", "request and path", "path only"]


def seed_cached_keyed(cache: CacheManager, prefix: str, expire: int = 300, *, key_from: KeyFrom = "all values",
                      asked: list[str] | None = None) -> Decorate:
    """The seed's ``@cached`` with its key bug patched the ways a reader tries next; its storage stays.

    ``key_from``: ``"all values"`` (every argument's ``str()``, keywords too), ``"request and path"``
    (the request and the path parameters), ``"path only"`` (just the path parameters). Each key
    looked up is appended to ``asked`` so a demo can count the distinct ones.
    """
    if key_from not in ("all values", "request and path", "path only"):
        raise ValueError(f"key_from={key_from!r}: use 'all values', 'request and path' or 'path only'")

    def decorator(func: Handler) -> Handler:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            parts = {"all values": (*args, *kwargs.values()), "request and path": (args[0], *kwargs.values()),
                     "path only": tuple(kwargs.values())}[key_from]
            key = seed_cache_key(prefix, *parts)
            if asked is not None:
                asked.append(key)
            cached_value = await cache.get(key)
            if cached_value is not None:
                return cached_value
            value = await func(*args, **kwargs)
            await cache.set(key, value, expire)  # a Response does not pickle: False, silently
            return value
        return wrapper
    return decorator


@dataclass
class RouteRun:
    """What ``requests`` GETs of ``/users/{id}`` did: statuses, loads (the 'database query'), keys in Redis."""

    label: str
    statuses: list[int] = field(default_factory=list)
    loads: int = 0
    keys_asked: list[str] = field(default_factory=list)
    keys_written: int = 0
    first_error: str = ""
    tracebacks_logged: int = 0  # what the framework logged for each 500: counted here, not printed 20 times

    def row(self) -> dict[str, Any]:
        """One row for a table: the label, requests, answers by class, loads, keys in Redis, first error."""
        return {"way": self.label, "requests": len(self.statuses),
                "2xx": sum(200 <= s < 300 for s in self.statuses), "5xx": sum(s >= 500 for s in self.statuses),
                "loads (queries)": self.loads, "distinct keys asked": len(set(self.keys_asked)),
                "keys in Redis": self.keys_written, "first error": self.first_error,
                "tracebacks logged": self.tracebacks_logged}


Load = Callable[[int], Awaitable[dict[str, Any]]]
RouteFactory = Callable[[Load, list[str]], Handler]


def seed_route(cache: CacheManager, *, key_from: KeyFrom | None = None) -> RouteFactory:
    """The syllabus' route: its ``@cached("user", expire=60)`` on the handler itself. ``key_from=None``
    is :func:`seed_cached` as written; otherwise :func:`seed_cached_keyed` with that key."""
    def build(load: Load, asked: list[str]) -> Handler:
        decorate = (seed_cached(cache, "user", expire=60) if key_from is None
                    else seed_cached_keyed(cache, "user", expire=60, key_from=key_from, asked=asked))

        @decorate
        async def get_user(request: Request, response: Response, user_id: int) -> Any:
            return response.json(await load(int(user_id)))
        return get_user
    return build


def cached_route(cache: MultiLevelCache, *, ttl: float = 60) -> RouteFactory:
    """The fix: the handler stays plain and calls ``load_user``, which :func:`perf.cache.cached` caches
    under ``user:{user_id}`` (the data, not the response; no request in the key)."""
    def build(load: Load, asked: list[str]) -> Handler:
        @cached(cache, ttl=ttl, key="user:{user_id}")
        async def load_user(user_id: int) -> dict[str, Any]:
            return await load(user_id)

        async def get_user(request: Request, response: Response, user_id: int) -> Any:
            asked.append(load_user.cache_key(int(user_id)))  # type: ignore[attr-defined]  # set by @cached
            return response.json(await load_user(int(user_id)))
        return get_user
    return build


async def serve_users(label: str, route: RouteFactory, *, requests: int = 20, users: int = 2,
                      count_keys: Callable[[], Awaitable[int]] | None = None) -> RouteRun:
    """Mount ``GET /users/{user_id}`` built by ``route`` on a real Nexios app and send ``requests`` GETs
    over ``users`` distinct ids through it, in process; ``count_keys`` (optional) reports the keys
    the run left in Redis."""
    if requests < 1 or users < 1:
        raise ValueError(f"requests={requests}, users={users}: both must be >= 1")
    run = RouteRun(label)

    async def load(user_id: int) -> dict[str, Any]:
        """The 'database query' behind the route (counted, not slept: the count is the finding)."""
        run.loads += 1
        return {"id": user_id, "name": f"User {user_id}"}

    app = NexiosApp()
    app.add_route(_route("/users/{user_id}", route(load, run.keys_asked)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with _counting_framework_errors(run):
        async with httpx.AsyncClient(transport=transport, base_url="http://workbook") as client:
            for i in range(requests):
                answer = await client.get(f"/users/{i % users + 1}")
                run.statuses.append(answer.status_code)
                if answer.status_code >= 500 and not run.first_error:
                    run.first_error = _error_line(answer.text)
    if count_keys is not None:
        run.keys_written = await count_keys()
    return run


@contextlib.contextmanager
def _counting_framework_errors(run: RouteRun) -> Iterator[None]:
    """Count, instead of printing, the traceback Nexios logs for each 500: the demo's table shows the
    first error and how many there were; forty copies of one traceback would bury it."""
    framework = logging.getLogger("nexios")

    def count(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            run.tracebacks_logged += 1
            return False
        return True

    framework.addFilter(count)
    try:
        yield
    finally:
        framework.removeFilter(count)


def _route(path: str, handler: Handler) -> Any:
    from nexios.routing import Route

    return Route(path, handler, methods=["GET"])


def _error_line(text: str) -> str:
    """The exception line of a traceback page (``TypeError: ...``), else the first 120 characters."""
    for line in reversed(text.splitlines()):
        if "Error:" in line or "Exception:" in line:
            return line.strip()[:160]
    return text.strip()[:120]


def handler_metadata(handler: Handler) -> dict[str, str]:
    """What a decorated handler still says about itself: name, docstring's first line, signature."""
    doc = (handler.__doc__ or "").strip().splitlines()
    return {"name": handler.__name__, "doc": doc[0] if doc else "(none)", "signature": str(inspect.signature(handler))}

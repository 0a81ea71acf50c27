"""Call an ASGI app in this process, with no sockets: what the app itself costs per request.

A load test measures the server, the network stack and the load generator together; to see
what a framework or a middleware costs, call the app directly and time that.
:class:`InProcessClient` runs the app's lifespan (startup on enter, shutdown on exit) and
sends requests as ASGI messages::

    async with InProcessClient(app) as client:
        status, headers, body = await client.request("GET", "/products/7")
        await client.request("PATCH", "/products/7", json={"name": "Lamp"}, headers={"authorization": ...})

Timing it is :func:`perf.measure.compare_async`'s job; ``await profile_requests(...)``
shows where the time goes (cProfile, grouped by package).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import orjson
import pandas as pd

from perf.aio import cancel_and_wait
from perf.asgi import ASGIApp, Message

__all__ = ["InProcessClient", "profile_requests"]


class InProcessClient:
    """``async with InProcessClient(app) as client``: lifespan + in-memory requests (see module doc).

    ``lifespan=False`` for an app without one; ``startup_timeout`` bounds the startup;
    ``client`` is the ``(host, port)`` the app sees as the peer (a loopback one by default).
    """

    def __init__(self, app: ASGIApp, *, lifespan: bool = True, startup_timeout: float = 60.0,
                 client: tuple[str, int] = ("127.0.0.1", 1)) -> None:
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        self.app = app
        self.client = client
        self.lifespan = lifespan
        self.startup_timeout = startup_timeout
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InProcessClient:
        if not self.lifespan:
            return self
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._lifespan_reply(self.startup_timeout)
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app's lifespan startup failed: {message.get('message', message['type'])}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is None:
            return
        try:
            await self._to_app.put({"type": "lifespan.shutdown"})
            await self._lifespan_reply(60.0)
        finally:
            await cancel_and_wait(self._task)
            self._task = None

    async def _lifespan_reply(self, timeout: float) -> Message:
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait({getter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if self._task in done:
            error = self._task.exception()
            raise RuntimeError(f"the app's lifespan ended without answering: {error!r}") from error
        raise TimeoutError(f"the app's lifespan did not answer within {timeout:g}s")

    async def request(self, method: str, path: str, *, body: bytes = b"", json: Any = None,
                      headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns ``(status, headers, body)`` (header names lower-case)."""
        if json is not None:
            body = orjson.dumps(json)
        raw_path, _, query = path.partition("?")
        head = [(b"host", b"in-process")]
        head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if json is not None and not any(k == b"content-type" for k, _ in head):
            head.append((b"content-type", b"application/json"))
        if body:
            head.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
                 "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": head, "server": ("127.0.0.1", 80), "client": self.client}
        sent_body = False
        finished = asyncio.Event()
        status, reply_headers, chunks = 0, dict[str, str](), list[bytes]()

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, reply_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                # a comprehension, not update(generator): what the client spends a header is charged to the
                # layer that added it (perf.api.demo_framework.layer_costs), so it spends as little as it can
                reply_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    finished.set()

        await self.app(scope, receive, send)
        finished.set()
        return status, reply_headers, b"".join(chunks)


async def profile_requests(call: Callable[[], Awaitable[Any]], *, number: int = 2000,
                                 top: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Profile ``number`` awaits of ``call`` after a warm-up (``await`` it: a notebook cell, an async test).

    Returns ``(by_package, by_function)``: own time per request (µs) summed by top-level
    package (``nexios``, ``perf``, ``asyncio``..., ``C`` for built-in functions such as
    ``orjson.dumps``) and the ``top`` functions by own time. cProfile slows every Python
    call, so read the *shares*, not the absolute µs.
    """
    if number < 1:
        raise ValueError(f"number must be >= 1 request, got {number!r}")
    for _ in range(min(number, 200)):  # warm: caches filled, code paths hot
        await call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        await call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_, ncalls, own, cumulative, _) in stats.items():
        rows.append({"package": _package(filename), "function": f"{_short(filename)}:{line}({name})",
                     "calls": ncalls / number, "own_us": own / number * 1e6,
                     "cumulative_us": cumulative / number * 1e6})
    frame = pd.DataFrame(rows)
    by_package = (frame.groupby("package", as_index=False)["own_us"].sum()
                  .sort_values("own_us", ascending=False, ignore_index=True))
    by_package["share"] = by_package["own_us"] / by_package["own_us"].sum()
    by_function = frame.sort_values("own_us", ascending=False, ignore_index=True).head(top)
    return by_package, by_function


def _package(filename: str) -> str:
    """The top-level package a profiled function lives in (``C`` for built-ins)."""
    if filename == "~" or filename.startswith("<"):
        return "C"
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "perf" in parts:
        return "perf"
    for i, part in enumerate(parts[:-1]):
        if part.startswith("python3"):  # the standard library: lib/python3.11/asyncio/events.py
            return parts[i + 1].removesuffix(".py")
    return parts[-1].removesuffix(".py")


def _short(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif "perf" in parts:
        parts = parts[parts.index("perf"):]
    else:
        parts = parts[-1:]
    return "/".join(parts)

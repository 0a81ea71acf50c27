"""Pure ASGI request-body guard: ``413`` for bodies over ``max_body`` bytes, ``408`` for slow ones.

A declared ``Content-Length`` over the limit is refused at once (the body is never
read); a chunked body is counted as it arrives, and as soon as it passes the limit
the middleware answers 413 itself and tells the app the client disconnected (the app's
own reply is dropped), so memory stays bounded either way. A body that has not fully
arrived ``read_timeout`` seconds after the request reached the app (one that stops: a
Content-Length larger than what is sent, a chunked body that never ends; or one trickled
a byte at a time, which a per-chunk timeout would wait for forever) gets ``408`` with
``Connection: close`` the same way: a total deadline, so ``max_body`` / ``read_timeout``
(1 MiB / 20 s: 52 KB/s) is the slowest upload served. A slow request *head* never
reaches the app and is the server's to bound (:mod:`perf.api.protocol`, granian's
``header_read_timeout``).

An HTTP/1.x request that declares no body (no ``Content-Length``, or ``0``, and no
``Transfer-Encoding``: every GET) has none to guard (RFC 9112 §6.3) and goes to the app untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from perf.api.errors import ApiError, send_error
from perf.asgi import Message, Scope

#: HTTP versions whose requests carry a body only when they say so (Content-Length or Transfer-Encoding);
#: an HTTP/2 or HTTP/3 request may have a body without either.
_LENGTH_OR_NO_BODY = frozenset({"1.0", "1.1"})


async def _dropped() -> None:
    """What the app's reply becomes once the guard has answered for it."""


class BodyLimitMiddleware:
    """``BodyLimitMiddleware(app, max_body=1 << 20, read_timeout=20.0)``."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, max_body: int = 1 << 20,
                 read_timeout: float = 20.0) -> None:
        if max_body < 1:
            raise ValueError(f"max_body={max_body!r} must be >= 1 byte")
        if not read_timeout > 0:
            raise ValueError(f"read_timeout={read_timeout!r} must be > 0 seconds")
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout

    def _too_large(self, size: int | None = None) -> ApiError:
        got = f" (got {size} bytes)" if size is not None else ""
        return ApiError(413, f"request body over {self.max_body} bytes{got}; send less or split it")

    def _too_slow(self) -> ApiError:
        return ApiError(408, f"request body not received within {self.read_timeout:g} s; send it at once",
                        headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not (value.isdigit() and len(value) <= 18):
                    await send_error(send, ApiError(400, "Content-Length must be a decimal integer of bytes"))
                    return
                declared = int(value)
                if declared > self.max_body:
                    await send_error(send, self._too_large(declared))
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body and scope.get("http_version") in _LENGTH_OR_NO_BODY:
            # An HTTP/1.x request with neither a Content-Length nor a Transfer-Encoding has no body (RFC 9112
            # §6.3): nothing to count or wait for, so no guard on receive and send (a GET: the common case).
            await self.app(scope, receive, send)
            return
        received = 0
        started = refused = body_done = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout  # for the whole body, not each chunk

        async def guarded_receive() -> Message:
            nonlocal received, refused, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done:  # only the disconnect is left to wait for: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                error: ApiError | None = self._too_slow()
            else:
                error = None
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    body_done = not message.get("more_body", False)
                    if received > self.max_body:
                        error = self._too_large()
            if error is None:
                return message
            # Answer now; the app sees the client go away and its own reply is dropped.
            refused = True
            if not started:
                await send_error(send, error)
            return {"type": "http.disconnect"}

        def guarded_send(message: Message) -> Awaitable[None]:
            # A plain function handing back an awaitable: no coroutine of its own a message.
            nonlocal started
            if refused and not started:
                return _dropped()
            started = started or message["type"] == "http.response.start"
            return send(message)

        await self.app(scope, guarded_receive, guarded_send)

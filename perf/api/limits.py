"""Pure ASGI request-body limit: ``413`` for bodies over ``max_body`` bytes, before they are read.

A declared ``Content-Length`` over the limit is refused at once (the body is never
read); a chunked body is counted as it arrives, and as soon as it passes the limit
the middleware answers 413 itself and tells the app the client disconnected (the app's
own reply is dropped), so memory stays bounded either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from perf.api.errors import ApiError, send_error
from perf.asgi import Message, Scope


class BodyLimitMiddleware:
    """``app.wrap_asgi(BodyLimitMiddleware, max_body=1 << 20)``."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, max_body: int = 1 << 20) -> None:
        if max_body < 1:
            raise ValueError(f"max_body={max_body!r} must be >= 1 byte")
        self.app = app
        self.max_body = max_body

    def _too_large(self, size: int | None = None) -> ApiError:
        got = f" (got {size} bytes)" if size is not None else ""
        return ApiError(413, f"request body over {self.max_body} bytes{got}; send less or split it")

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, ApiError(400, "Content-Length is not an integer"))
                    return
                if declared > self.max_body:
                    await send_error(send, self._too_large(declared))
                    return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # Answer 413 now; the app sees the client go away and its own reply is dropped.
                    refused = True
                    if not started:
                        await send_error(send, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

"""Memory of compressing a large streamed response: buffer the whole body, or compress as it streams.

:func:`streamed_app` streams ``total_bytes`` of JSON lines in chunks, generating each
chunk when it is sent (the app never holds more than one). :class:`BufferingCompression`
is the design the seed's middleware implies: collect the body, compress it in one call,
send it. :func:`compression_memory` runs both (and :class:`~perf.compression.middleware.
CompressionMiddleware`, which compresses chunk by chunk) in process and records each run's
peak Python allocation (:func:`perf.measure.peak_memory_async`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence

import pandas as pd

from perf.asgi import ASGIApp, Message, Receive, Scope, Send
from perf.compression.middleware import CompressionMiddleware
from perf.measure import peak_memory_async

_LINE = b'{"id": %d, "name": "Travel Kettle", "price": 24.99, "tags": ["kitchen", "outdoor"]}\n'


def streamed_app(total_bytes: int, *, chunk_bytes: int = 64 * 1024) -> ASGIApp:
    """An ASGI app that streams about ``total_bytes`` of JSON lines, ``chunk_bytes`` at a time."""
    if total_bytes < 1 or chunk_bytes < 1:
        raise ValueError(f"total_bytes={total_bytes!r} and chunk_bytes={chunk_bytes!r} must be >= 1")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")]})
        sent, line_id = 0, 0
        while sent < total_bytes:
            lines = []
            size = 0
            while size < chunk_bytes:
                line = _LINE % line_id
                lines.append(line)
                size += len(line)
                line_id += 1
            chunk = b"".join(lines)
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": sent < total_bytes})

    return app


class BufferingCompression:
    """Collect the whole body, then gzip it in one call: what compressing ``response.body`` means."""

    def __init__(self, app: ASGIApp, *, level: int = 6) -> None:
        self.app, self.level = app, level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        parts: list[bytes] = []

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = gzip.compress(b"".join(parts), compresslevel=self.level)
                    headers = [*start["headers"], (b"content-encoding", b"gzip"),
                               (b"content-length", str(len(body)).encode())]
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, collect)


async def _serve(app: ASGIApp) -> int:
    """Run one GET through ``app`` in process; returns the bytes the client received."""
    received = 0

    async def send(message: Message) -> None:
        nonlocal received
        received += len(message.get("body", b""))

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/export", "headers": [(b"accept-encoding", b"gzip")]}
    await app(scope, receive, send)
    return received


async def compression_memory(*, sizes: Sequence[int], repeat: int = 3) -> pd.DataFrame:
    """Peak Python allocation per way of compressing and body size: one row per (way, size, round).

    Columns ``way``, ``body_mib`` (uncompressed), ``round``, ``python_peak_mib``, ``sent_bytes``.
    Ways: ``no compression``, ``buffer then gzip`` and ``streaming gzip`` (the middleware, gzip only).
    """
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes={sizes!r} must be body sizes in bytes >= 1, e.g. (2**20, 8 * 2**20)")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat={repeat!r} must be an int >= 1")
    ways: dict[str, Callable[[ASGIApp], ASGIApp]] = {
        "no compression": lambda app: app,
        "buffer then gzip": lambda app: BufferingCompression(app),
        "streaming gzip": lambda app: CompressionMiddleware(app, encodings=("gzip",), levels={"gzip": 6}),
    }
    rows = []
    for round_ in range(repeat):
        for size in sizes:
            for way, wrap in ways.items():
                app = wrap(streamed_app(size))

                async def serve(app: ASGIApp = app) -> int:
                    return await _serve(app)
                peak = await peak_memory_async(serve)
                rows.append({"way": way, "body_mib": size / 2**20, "round": round_,
                             "python_peak_mib": peak.python_peak_mib, "sent_bytes": peak.result})
    return pd.DataFrame(rows)

"""What NOT to do: the seed tutorial's compression as a Nexios *function* middleware.

Kept only to show it failing. In nexios 3.12.3 a function middleware runs
``await call_next()`` and gets the response object back, but the body has already been
rendered into an ASGI response that this object does not expose: ``response.body``
reads ``b''`` and cannot be set. So the seed's middleware never compresses anything:
it only pays for its own call on every request. Use
:class:`perf.compression.middleware.CompressionMiddleware` via ``app.wrap_asgi`` instead.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any

#: Counters the naive middleware updates, so a notebook can show what it saw.
NaiveStats = dict[str, int]


def create_naive_compression_middleware(*, min_size: int = 1000, level: int = 6,
                                        stats: NaiveStats | None = None
                                        ) -> Callable[[Any, Any, Callable[[], Awaitable[Any]]], Awaitable[Any]]:
    """The seed's ``CompressionMiddleware.__call__`` as a Nexios function middleware.

    ``stats`` (optional dict) counts ``requests``, ``empty_body`` (``response.body`` read
    as ``b''``) and ``compressed``. Do not use this in an app: it compresses nothing.
    """
    counts = stats if stats is not None else {}
    for key in ("requests", "empty_body", "compressed"):
        counts.setdefault(key, 0)

    async def naive_compression(request: Any, response: Any, call_next: Callable[[], Awaitable[Any]]) -> Any:
        counts["requests"] += 1
        response = await call_next()
        content = getattr(response, "body", b"") or b""
        if not content:  # always taken under nexios 3.12.3
            counts["empty_body"] += 1
            return response
        accept = request.headers.get("Accept-Encoding", "")
        if len(content) < min_size or "gzip" not in accept:
            return response
        try:
            response.body = gzip.compress(content, level)
        except AttributeError:
            return response
        response.set_header("Content-Encoding", "gzip", overide=True)
        counts["compressed"] += 1
        return response

    return naive_compression

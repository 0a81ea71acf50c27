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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pandas as pd

from perf.compression.accept_encoding import choose_encoding, parse_accept_encoding
from perf.compression.codecs import PREFERENCE

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


#: Content types the seed compresses (a substring test, as the seed does it).
SEED_COMPRESSIBLE = ("text/", "application/json", "application/xml", "application/javascript")

#: ``Accept-Encoding`` values on which the seed's substring test goes wrong, and two it gets right.
TRICKY_ACCEPT_ENCODINGS = ("gzip;q=0", "GZIP", "br;q=1, gzip;q=0.5", "deflate, gzip;q=0", "*", "x-gzip",
                           "gzip;q=2", "identity", "*;q=0", "gzip, deflate")


def seed_should_compress(accept_encoding: str, content_type: str = "application/json",
                         content_length: int = 100_000, *, min_size: int = 1000) -> str | None:
    """The seed's ``CompressionMiddleware.should_compress``, bugs included: substring tests.

    ``"gzip" in accept_encoding`` also matches ``gzip;q=0`` (a refusal) and misses ``GZIP``
    (codings are case-insensitive) and ``*``. Compare with
    :func:`perf.compression.accept_encoding.choose_encoding`.

    >>> seed_should_compress("gzip;q=0"), seed_should_compress("GZIP")
    ('gzip', None)
    """
    if content_length < min_size:
        return None
    if not any(t in content_type for t in SEED_COMPRESSIBLE):
        return None
    if "gzip" in accept_encoding:
        return "gzip"
    if "deflate" in accept_encoding:
        return "deflate"
    return None


def _verdict(header: str, seed: str | None, correct: str | None, server: str | None) -> str:
    if seed == correct:
        return "right" if server == correct else f"right, but the client prefers {server}, which it lacks"
    try:
        prefs = parse_accept_encoding(header)
    except ValueError:
        return f"sends {seed} for a malformed header"
    if seed is None:
        return f"sends nothing, the client accepts {correct}"
    if prefs.get(seed, prefs.get("*", 0.0)) == 0.0:
        return f"sends {seed}, which the client refused"
    return f"sends {seed}, the client prefers {correct or 'identity'}"


def seed_negotiation_table(headers: Sequence[str] = TRICKY_ACCEPT_ENCODINGS,
                           server: Sequence[str] = PREFERENCE) -> pd.DataFrame:
    """The seed's choice beside the correct negotiation, one row per ``Accept-Encoding`` value.

    Columns: ``Accept-Encoding``; ``seed`` (:func:`seed_should_compress`); ``correct``
    (:func:`~perf.compression.accept_encoding.choose_encoding` over the seed's own codings,
    gzip and deflate, so the two are compared like for like); ``seed verdict``; and
    ``server`` (the same negotiation over ``server``, the codings the real middleware offers).
    ``None`` is shown as ``identity`` (the body sent as is).
    """
    rows = []
    for header in headers:
        seed = seed_should_compress(header)
        correct = choose_encoding(header, ("gzip", "deflate"))
        best = choose_encoding(header, server)
        rows.append({"Accept-Encoding": header, "seed": seed or "identity", "correct": correct or "identity",
                     "seed verdict": _verdict(header, seed, correct, best), "server": best or "identity"})
    return pd.DataFrame(rows)

"""Exercises for notebook 04: content-coding negotiation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perf.asgi import Message, Receive, Scope, Send
from perf.compression.accept_encoding import choose_encoding
from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise

#: The server offers these, best first.
OFFERED = ("br", "gzip")

#: Headers real clients send, and the tricky ones the seed's ``"gzip" in header`` gets wrong.
HEADERS: tuple[str | None, ...] = (
    "gzip", "br", "gzip, br", "br;q=1, gzip;q=0.5", "gzip;q=0.5, br;q=0.9", "GZIP", "x-gzip",
    "gzip;q=0", "br;q=0, gzip", "*", "*;q=0", "identity", "identity;q=0, *;q=0", "deflate",
    "", None, "gzip;q=0.000", "br;q=0.001", "*;q=0.5, br;q=0", "compress, gzip;q=0, *;q=0.1",
    "gzip;q=2", "gzip;;q=1", "gzip, gzip;q=0",
)


@exercise("04.negotiate", title="negotiate Accept-Encoding like RFC 9110", answer="choose",
          nudge="Read the failing header: which coding did it prefer, and what does q=0 mean?")
async def negotiate(choose: Callable[[str | None], str | None], *, settings: Settings, **_ignored: Any) -> Report:
    """``choose(header)`` must return ``"br"``, ``"gzip"`` or ``None`` (identity) for every header
    in :data:`HEADERS`, as RFC 9110 §12.5.3 says, when the server offers :data:`OFFERED`."""
    report = Report(hint="Parse the header into coding -> q (case-insensitive, q=0 means 'refused', "
                         "a coding not named gets the weight of '*'); a malformed header means identity. "
                         "Then pick the offered coding with the highest q; ties go to the server's order.")
    wrong = []
    for header in HEADERS:
        got = await call_learner(report, f"choose({header!r})", choose, header, hint=report.hint)
        if got != choose_encoding(header, OFFERED):
            wrong.append(f"{header!r} -> {got!r}")
    report.require(f"the right coding for all {len(HEADERS)} headers", not wrong,
                   f"{len(wrong)} wrong: " + "; ".join(wrong[:4]) + (" …" if len(wrong) > 4 else ""))
    if not wrong:
        report.hint = ""
    return report


#: (status, content-type, extra headers, body bytes): responses a server sends every day.
RESPONSES: tuple[tuple[int, str, tuple[tuple[str, str], ...], int], ...] = (
    (200, "application/json", (), 20_000), (200, "text/html; charset=utf-8", (), 8_000),
    (200, "text/css", (), 3_000), (200, "application/json", (), 300), (200, "image/png", (), 50_000),
    (200, "application/zip", (), 80_000), (200, "video/mp4", (), 500_000), (204, "application/json", (), 0),
    (304, "text/html", (), 0), (206, "application/octet-stream", (), 10_000),
    (200, "application/json", (("content-encoding", "br"),), 9_000), (200, "text/event-stream", (), 4_000),
    (201, "application/json", (), 4_000), (200, "image/svg+xml", (), 12_000),
)


async def _middleware_compresses(status: int, content_type: str, extra: tuple[tuple[str, str], ...],
                                 size: int) -> bool:
    """Ask the real :class:`~perf.compression.middleware.CompressionMiddleware` (in process)."""
    from perf.compression.middleware import CompressionMiddleware

    body = (b'{"k": "' + b"v" * max(size - 9, 0) + b'"}')[:size]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if status not in (204, 304) else b""})

    started: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"accept-encoding", b"br, gzip")]}
    await CompressionMiddleware(app, encodings=("br", "gzip"))(scope, receive, send)
    encoded = dict(started[0]["headers"]).get(b"content-encoding")
    return encoded is not None and not any(k == "content-encoding" for k, _ in extra)


Decide = Callable[[int, str, dict[str, str], int], bool]


@exercise("04.worth", title="know when compressing is worth it", answer="worth_compressing",
          nudge="Look at the failing response's size, type and headers: would compressing it gain anything?")
async def worth(worth_compressing: Decide, *, settings: Settings, **_ignored: Any) -> Report:
    """``worth_compressing(status, content_type, headers, size)`` says whether a response should be
    compressed; the middleware's own decision on the same response is the reference."""
    report = Report(hint="Some statuses have no body to compress, some types are compressed already, "
                         "small bodies lose more to the header than they gain, a body that already has a "
                         "Content-Encoding must be left alone, and an event stream must never be buffered.")
    wrong = []
    for status, ctype, extra, size in RESPONSES:
        got = await call_learner(report, f"worth_compressing({status}, {ctype!r}, …)", worth_compressing,
                                 status, ctype, dict(extra), size, hint=report.hint)
        if bool(got) != await _middleware_compresses(status, ctype, extra, size):
            wrong.append(f"{status} {ctype} {size} B{' ' + str(dict(extra)) if extra else ''} -> {bool(got)}")
    report.require(f"the right decision for all {len(RESPONSES)} responses", not wrong,
                   f"{len(wrong)} wrong: " + "; ".join(wrong[:3]) + (" …" if len(wrong) > 3 else ""))
    return report

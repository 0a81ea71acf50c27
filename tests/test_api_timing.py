"""perf.api.timing: the ``Server-Timing`` value and the headers the layer adds, around tiny inline apps."""

from __future__ import annotations

import random

import httpx

from perf.api.timing import TimingMiddleware, server_timing, set_cache_status, timed


def _formatted(db: float, cache: float, total: float) -> str:
    """The header as the layer first wrote it (an f-string a request): the reference the fast one must match."""
    app_time = max(total - db - cache, 0.0)
    return (f"db;dur={db * 1e3:.2f}, cache;dur={cache * 1e3:.2f}, "
            f"app;dur={app_time * 1e3:.2f}, total;dur={total * 1e3:.2f}")


def test_server_timing_writes_what_the_f_string_wrote():
    rng = random.Random(29)
    cases = [(0.0, 0.0, 0.0), (0.0, 2e-5, 9e-5), (0.0, 5e-3, 1e-3), (1.2e-3, 5e-5, 1.56e-3), (0.004999, 0.0, 0.005),
             (12.5, 0.25, 13.0)]
    cases += [(rng.choice((0.0, rng.uniform(0, 0.05))), rng.uniform(0, 1e-3), rng.uniform(0, 0.1))
              for _ in range(2000)]
    for db, cache, total in cases:
        assert server_timing(db, cache, total).decode() == _formatted(db, cache, total), (db, cache, total)


async def test_the_app_s_own_timing_headers_are_replaced_not_repeated():
    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        with timed("cache"):
            set_cache_status("hit-l1")
        headers = [(b"content-length", b"2"), (b"Server-Timing", b"fake;dur=1"), (b"x-cache", b"lie"),
                   (b"etag", b'"a"')]
        await send({"type": "http.response.start", "status": 200, "headers": iter(headers)})  # any iterable
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=TimingMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    assert response.headers.get_list("server-timing")[0].startswith("db;dur=0.00, cache;dur=")
    assert len(response.headers.get_list("server-timing")) == 1
    assert response.headers.get_list("x-cache") == ["hit-l1"] and response.text == "ok"
    assert response.headers["content-length"] == "2" and response.headers["etag"] == '"a"'  # the others kept

"""perf.api's ASGI layers in-process, each around a tiny inline app: the 405 fix, the error
boundary, the body limit and the timing headers."""

from __future__ import annotations

import httpx
import pytest
from nexios import NexiosApp

from perf.api.app import ApiNexios
from perf.api.errors import ApiError, ErrorBoundary, SafeRoute
from perf.api.limits import BodyLimitMiddleware
from perf.api.metrics import ApiMetrics
from perf.api.timing import TimingMiddleware, set_cache_status, timed


def _client(app) -> httpx.AsyncClient:  # noqa: ANN001
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _items_app(route_class: type | None = None) -> NexiosApp:
    app = NexiosApp(debug=False, **({"route_class": route_class} if route_class else {}))

    @app.get("/items")
    async def items(request, response):  # noqa: ANN001, ANN202
        return response.json({"items": []})

    @app.get("/boom")
    async def boom(request, response):  # noqa: ANN001, ANN202
        raise RuntimeError("secret internals")

    app.wrap_asgi(ErrorBoundary)
    return app


async def test_plain_nexios_route_answers_405_forever_after_one_wrong_method():
    # The framework bug SafeRoute works around (nexios 3.12.3 Route.handle replaces its app).
    async with _client(_items_app()) as client:
        assert (await client.get("/items")).status_code == 200
        assert (await client.post("/items")).status_code == 405
        assert (await client.get("/items")).status_code == 405


async def test_safe_route_answers_405_with_allow_and_keeps_working():
    async with _client(_items_app(SafeRoute)) as client:
        wrong = await client.post("/items")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
        assert wrong.json()["status"] == 405
        assert (await client.get("/items")).status_code == 200


async def test_error_boundary_turns_any_exception_into_json_without_a_traceback():
    async with _client(_items_app(SafeRoute)) as client:
        boom = await client.get("/boom")
        missing = await client.get("/nowhere")
    assert boom.status_code == 500 and boom.json() == {"error": "internal server error", "status": 500}
    assert "secret internals" not in boom.text and "Traceback" not in boom.text
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"


async def _echo_length(scope, receive, send):  # noqa: ANN001, ANN202
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def test_body_limit_refuses_declared_and_streamed_bodies_over_the_limit():
    async with _client(BodyLimitMiddleware(_echo_length, max_body=1000)) as client:
        assert (await client.post("/", content=b"x" * 1000)).text == "1000"
        declared = await client.post("/", content=b"x" * 1001)
        assert declared.status_code == 413 and "1001 bytes" in declared.json()["error"]

        async def chunks():  # noqa: ANN202
            for _ in range(5):
                yield b"y" * 300

        streamed = await client.post("/", content=chunks())
        assert streamed.status_code == 413


async def _raw_call(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes], *,  # noqa: ANN001
                    http_version: str = "1.1") -> tuple[list[dict], bool, bool]:
    """POST ``chunks`` through ``BodyLimitMiddleware(app, max_body=1000)``: what it sent, and whether ``app``
    got the server's own receive and send."""
    scope = {"type": "http", "http_version": http_version, "method": "POST", "path": "/", "headers": headers}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []
    seen = {}

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async def spy(scope, inner_receive, inner_send):  # noqa: ANN001, ANN202
        seen.update(receive=inner_receive, send=inner_send)
        await app(scope, inner_receive, inner_send)

    await BodyLimitMiddleware(spy, max_body=1000)(scope, receive, send)
    return sent, seen.get("receive") is receive, seen.get("send") is send


async def test_body_limit_leaves_a_request_without_a_body_alone():
    """HTTP/1.x with no Content-Length (or 0) and no Transfer-Encoding has no body: the app gets receive and
    send untouched; anything that may carry a body (a length, chunked, HTTP/2) is guarded."""
    for headers, version, guarded in (([], "1.1", False), ([(b"content-length", b"0")], "1.0", False),
                                      ([(b"content-length", b"3")], "1.1", True),
                                      ([(b"transfer-encoding", b"chunked")], "1.1", True), ([], "2", True)):
        sent, same_receive, same_send = await _raw_call(_echo_length, headers, [b"abc"], http_version=version)
        assert (same_receive, same_send) == (not guarded, not guarded), (headers, version)
        assert sent[0]["status"] == 200, (headers, version)


async def test_body_limit_refuses_a_chunked_or_http2_body_over_the_limit_as_it_arrives():
    for headers, version in (([(b"transfer-encoding", b"chunked")], "1.1"), ([], "2")):
        sent, _, _ = await _raw_call(_echo_length, headers, [b"y" * 600, b"y" * 600], http_version=version)
        assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413], (headers, version)
        assert b"over 1000 bytes" in sent[1]["body"]


async def test_timing_headers_report_db_cache_app_total_and_cache_status():
    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        with timed("db"):
            pass
        set_cache_status("hit-l2")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    metrics = ApiMetrics()
    async with _client(TimingMiddleware(app, metrics=metrics)) as client:
        response = await client.get("/")
    names = [part.split(";")[0].strip() for part in response.headers["server-timing"].split(",")]
    assert names == ["db", "cache", "app", "total"]
    assert response.headers["x-cache"] == "hit-l2"
    assert metrics.summary()["count"] == 1 and metrics.summary()["by_cache"] == {"hit-l2": 1}


def test_error_bodies_render_whatever_they_hold():
    huge = ApiError(422, "bad", errors=[{"field": "page", "message": "x", "value": 2**70}]).body()
    assert b"1180591620717411303424" in huge
    surrogate = ApiError(400, "bad \ud800 name").body()
    assert b'"status": 400' in surrogate or b'"status":400' in surrogate


async def test_outer_boundary_answers_json_500_for_a_failing_layer_and_counts_it():
    async def broken_layer(scope, receive, send):  # noqa: ANN001, ANN202 - e.g. a fast path that raises
        raise ValueError("invalid literal for int() with base 10: '²'")

    metrics = ApiMetrics()
    app = ErrorBoundary(TimingMiddleware(broken_layer, metrics=metrics), metrics=metrics)
    async with _client(app) as client:
        response = await client.get("/products/%C2%B2")
    assert response.status_code == 500 and response.json() == {"error": "internal server error", "status": 500}
    assert "int()" not in response.text
    assert metrics.summary()["by_status"] == {"500": 1}


def _api_nexios_app(*, bridges: bool) -> ApiNexios:
    app = ApiNexios(debug=False, route_class=SafeRoute, bridges=bridges)

    async def items(request, response):  # noqa: ANN001, ANN202
        return response.json({"items": []})

    async def boom(request, response):  # noqa: ANN001, ANN202
        raise RuntimeError("secret internals")

    app.add_route(SafeRoute("/items", items, methods=["GET"]))
    app.add_route(SafeRoute("/boom", boom, methods=["GET"]))
    app.wrap_asgi(ErrorBoundary)
    return app


@pytest.mark.parametrize("bridges", [False, True])
async def test_api_nexios_answers_the_same_with_or_without_the_bridges(bridges: bool):
    async with _client(_api_nexios_app(bridges=bridges)) as client:
        assert (await client.get("/items")).json() == {"items": []}
        boom, missing, wrong = await client.get("/boom"), await client.get("/nope"), await client.post("/items")
        docs = await client.get("/docs")
    assert boom.status_code == 500 and boom.json() == {"error": "internal server error", "status": 500}
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    assert docs.status_code == 404  # no CDN-scripted docs pages


async def test_a_function_middleware_brings_the_framework_chain_back():
    app = _api_nexios_app(bridges=False)
    seen = []

    async def mark(request, response, call_next):  # noqa: ANN001, ANN202
        seen.append(request.url.path)
        return await call_next()

    app.add_middleware(mark)
    async with _client(app) as client:
        assert (await client.get("/items")).status_code == 200
    assert seen == ["/items"]

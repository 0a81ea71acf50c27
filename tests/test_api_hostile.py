"""The product API under hostile input, over raw sockets against a real uvicorn server: every
request below gets a 4xx with a JSON error body naming the problem, never a 5xx, and the
server keeps serving. ``AUTH`` stands for the server's bearer token (filled in at run time)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from tests._api_helpers import drop_namespace, unique_name
from tests._api_raw import exchange, request_bytes

AUTH = "Bearer AUTH"
J = {"Content-Type": "application/json", "Authorization": AUTH}  # a well-formed write, but for the body
BIG = "99999999999999999999999"
GOOD = b'{"name": "Lamp", "price": "9.90", "category_id": 1}'


def body(text: str) -> bytes:
    return text.encode()


# (case id, method, target, headers, body, expected status)
CASES: list[tuple[str, str, str, dict[str, str] | None, bytes | None, int]] = [
    # list paging: ASCII digits within range, else 422 naming the parameter
    *[(f"list {q}", "GET", f"/products?{q}", None, None, 422) for q in (
        "page=0", "page=-1", f"page={BIG}", f"page=-{BIG}", "page=abc", "page=1.5", "page=%EF%BC%91",
        "page=%D9%A1", "page=%C2%B2", "page=", "page=1e3", "page=+1", "page=%201", "page=1_0",
        "per_page=0", "per_page=101", f"per_page={BIG}", "category=0", "category=2147483648",
        f"category={BIG}", "after=-1", "after=18446744073709551616", "after=9223372036854775808", "after=x",
        "page=1&per_page=%00")],
    # product ids: only canonical ASCII digits in 1..2**63-1 name a product
    *[(f"get id {raw}", "GET", f"/products/{raw}", None, None, 404) for raw in (
        "%C2%B2", "%E2%91%A0", "%E2%81%B0", "%D9%A1%D9%A2", "%EF%BC%91", "0", "-1", "01", "1.0", "1e3", "%201",
        "9223372036854775808", BIG, "abc", "%00", "%FF", "1%2F2", "+1", "1_0", "0x1")],
    ("delete id superscript", "DELETE", "/products/%C2%B2", {"Authorization": AUTH}, None, 404),
    ("patch id arabic digits", "PATCH", "/products/%D9%A1", J, GOOD, 404),
    # writes need the token
    ("create without token", "POST", "/products", {"Content-Type": "application/json"}, GOOD, 401),
    ("create wrong token", "POST", "/products", {**J, "Authorization": "Bearer nope"}, GOOD, 401),
    ("create basic auth", "POST", "/products", {**J, "Authorization": "Basic YTpi"}, GOOD, 401),
    ("create empty bearer", "POST", "/products", {**J, "Authorization": "Bearer "}, GOOD, 401),
    ("create token prefix", "POST", "/products", {**J, "Authorization": "Bearer TRUNCATED"}, GOOD, 401),
    ("patch without token", "PATCH", "/products/1", {"Content-Type": "application/json"}, b'{"price": 1}', 401),
    ("delete without token", "DELETE", "/products/1", None, None, 401),
    ("upload without token", "POST", "/uploads", None, b"data", 401),
    # JSON only
    ("create text/plain", "POST", "/products", {**J, "Content-Type": "text/plain"}, GOOD, 415),
    ("create form", "POST", "/products", {**J, "Content-Type": "application/x-www-form-urlencoded"}, GOOD, 415),
    ("create no content type", "POST", "/products", {"Authorization": AUTH}, GOOD, 415),
    ("create application/jsonx", "POST", "/products", {**J, "Content-Type": "application/jsonx"}, GOOD, 415),
    ("patch text/plain", "PATCH", "/products/1", {**J, "Content-Type": "text/plain"}, b'{"price": 1}', 415),
    # bodies
    ("malformed json", "POST", "/products", J, b"{not json", 400),
    ("empty body", "POST", "/products", J, b"", 400),
    ("invalid utf-8", "POST", "/products", J, b'{"name": "\xff"}', 400),
    ("lone surrogate", "POST", "/products", J, body('{"name": "\\ud800", "price": 1, "category_id": 1}'), 400),
    ("nested 5000 deep", "POST", "/products", J, b"[" * 5000 + b"]" * 5000, 400),
    ("int over 64 bits", "POST", "/products", J, body(f'{{"name": "a", "price": {BIG}, "category_id": 1}}'), 422),
    ("patch image url [::1", "PATCH", "/products/1", J, b'{"image_urls": ["http://[::1"]}', 422),
    ("array body", "POST", "/products", J, b"[1, 2]", 422),
    ("null body", "POST", "/products", J, b"null", 422),
    ("string body", "POST", "/products", J, b'"x"', 422),
    ("category 2**63", "POST", "/products", J, body('{"name": "a", "price": 1, "category_id": 9223372036854775808}'),
     422),
    *[(f"price {p}", "POST", "/products", J, body(f'{{"name": "a", "price": {p}, "category_id": 1}}'), 422)
      for p in ('"NaN"', '"1e5"', "-1", '"-1"', '"1.234"', "1.5", "true", "null", "[]", "{}", '" 5"', '"5\\n"')],
    *[(f"name {n}", "POST", "/products", J, body(f'{{"name": {n}, "price": 1, "category_id": 1}}'), 422)
      for n in ('""', '"   "', '"' + "x" * 201 + '"', '"a\\u0000b"', "123")],
    *[(f"image_urls {u}", "POST", "/products", J,
       body(f'{{"name": "a", "price": 1, "category_id": 1, "image_urls": {u}}}'), 422)
      for u in ('["http://[::1"]', '["http://[zz]/"]', '["javascript:alert(1)"]', '["ftp://x/y"]', '["http://"]',
                '"http://a.b/c"', "[1]", '["http://\\u00e9.com/"]', '["http://a.b/ c"]', '["http://a.b:99999/"]',
                '[' + ",".join(['"http://a.b/c"'] * 21) + ']')],
    ("description too long", "POST", "/products", J,
     body('{"name": "a", "price": 1, "category_id": 1, "description": "' + "d" * 10_001 + '"}'), 422),
    ("unknown field", "POST", "/products", J, body('{"name": "a", "price": 1, "category_id": 1, "admin": true}'), 422),
    ("patch nothing", "PATCH", "/products/1", J, b"{}", 422),
    ("no such category", "POST", "/products", J, body('{"name": "a", "price": 1, "category_id": 2147483647}'), 409),
    ("body over limit", "POST", "/products", J, b"x" * (64 * 1024 + 1), 413),
    ("upload over limit", "POST", "/uploads", {"Authorization": AUTH}, b"x" * (64 * 1024 + 1), 413),
    ("empty upload", "POST", "/uploads", {"Authorization": AUTH}, b"", 400),
    ("upload as text/plain", "POST", "/uploads", {"Authorization": AUTH, "Content-Type": "text/plain"}, b"x", 415),
    ("upload as a form", "POST", "/uploads",
     {"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"}, b"a=1", 415),
    ("upload as multipart", "POST", "/uploads",
     {"Authorization": AUTH, "Content-Type": "multipart/form-data; boundary=x"}, b"--x--", 415),
    # methods and paths
    ("put products", "PUT", "/products", None, None, 405),
    ("delete collection", "DELETE", "/products", {"Authorization": AUTH}, None, 405),
    ("post to an id", "POST", "/products/1", J, GOOD, 405),
    ("patch health", "PATCH", "/health", None, None, 405),
    ("no such path", "GET", "/no/such/path", None, None, 404),
    ("trailing slash", "GET", "/products/1/", None, None, 404),
    ("dot dot", "GET", "/%2e%2e/%2e%2e/etc/passwd", None, None, 404),
    ("long path", "GET", "/" + "a" * 6000, None, None, 404),
    ("unknown task", "GET", "/tasks/%00", None, None, 404),
    ("docs are off", "GET", "/docs", None, None, 404),
    ("redoc is off", "GET", "/redoc", None, None, 404),
]

# framing the HTTP parser refuses, sent byte for byte: 400 JSON, connection closed
FRAMING: list[tuple[str, bytes]] = [
    ("garbage request line", b"GARBAGE\r\n\r\n"),
    ("negative content-length", b"POST /products HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"),
    ("content-length not a number", b"POST /uploads HTTP/1.1\r\nHost: t\r\nContent-Length: 1e3\r\n\r\n"),
    ("two content-lengths", b"POST /uploads HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    ("bad chunk size", b"POST /uploads HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
    ("header without colon", b"GET /products HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n"),
    ("NUL in a header", b"GET /products HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n"),
    ("space before colon", b"GET /products HTTP/1.1\r\nHost : t\r\n\r\n"),
    ("HTTP/9.9", b"GET /products HTTP/9.9\r\nHost: t\r\n\r\n"),
    ("TE and CL together", b"POST /uploads HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
]


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_api_hostile")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=20,
                                   max_body=64 * 1024)) as srv:
            yield srv
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def _with_token(headers: dict[str, str] | None, token: str) -> dict[str, str] | None:
    real = {AUTH: f"Bearer {token}", "Bearer TRUNCATED": f"Bearer {token[:-1]}"}
    return None if headers is None else {k: real.get(v, v) for k, v in headers.items()}


def _assert_json_error(response, status: int) -> None:  # noqa: ANN001
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers.get("content-type") == "application/json", response.headers
    error = response.json()
    assert error["status"] == status and error["error"]
    assert b"Traceback" not in response.body and b"127.0.0.1" not in response.body


@pytest.mark.parametrize(("method", "target", "headers", "payload", "status"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_hostile_request_gets_a_json_4xx(server: ApiServer, method: str, target: str,
                                         headers: dict[str, str] | None, payload: bytes | None, status: int):
    request = request_bytes(method, target, headers=_with_token(headers, server.token), body=payload)
    _assert_json_error(exchange(server.port, request), status)


@pytest.mark.parametrize("raw", [case[1] for case in FRAMING], ids=[case[0] for case in FRAMING])
def test_bad_framing_gets_a_json_400(server: ApiServer, raw: bytes):
    _assert_json_error(exchange(server.port, raw), 400)


def test_no_5xx_was_served_and_every_answer_was_counted(server: ApiServer):
    """Every case again, on its own (this test may run first, alone, or in any order): the server's
    own books count each answer as a 4xx, none as a 5xx, and it still serves afterwards."""
    assert len(CASES) + len(FRAMING) >= 80

    def by_status(client: httpx.Client) -> dict[int, int]:
        metrics = client.get("/metrics.json").json()
        return {int(code): n for code, n in metrics["server_requests"]["by_status"].items()}

    with httpx.Client(base_url=server.url) as client:
        before = by_status(client)
        for case in CASES:
            method, target, headers, payload, _ = case[1:]
            exchange(server.port, request_bytes(method, target, headers=_with_token(headers, server.token),
                                                body=payload))
        for _, raw in FRAMING:
            exchange(server.port, raw)
        after = by_status(client)
        assert client.get("/products/1").status_code == 200  # still serving
    added = {code: after.get(code, 0) - before.get(code, 0) for code in after}
    assert not [code for code in after if code >= 500], after
    assert sum(n for code, n in added.items() if 400 <= code < 500) >= len(CASES), added

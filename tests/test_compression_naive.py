"""The seed's ``should_compress`` reproduced with its bugs, and the table that sets it beside the fix."""

from __future__ import annotations

import pytest

from perf.asgi import Receive, Scope, Send
from perf.compression.accept_encoding import choose_encoding, parse_accept_encoding
from perf.compression.codecs import decompress
from perf.compression.demo_race import asgi_get
from perf.compression.middleware import CompressionMiddleware
from perf.compression.naive import TRICKY_ACCEPT_ENCODINGS, seed_negotiation_table, seed_should_compress


@pytest.mark.parametrize(("header", "seed"), [
    ("gzip;q=0", "gzip"),             # a refusal, matched as a substring
    ("deflate, gzip;q=0", "gzip"),    # the refused coding wins over the accepted one
    ("GZIP", None),                   # codings are case-insensitive; the substring test is not
    ("*", None),                      # "anything" is not understood
    ("gzip;q=2", "gzip"),             # malformed, compressed anyway
    ("br;q=1, gzip;q=0.5", "gzip"),
    ("identity", None),
])
def test_seed_should_compress_reproduces_the_substring_test(header: str, seed: str | None) -> None:
    assert seed_should_compress(header) == seed


def test_seed_should_compress_keeps_the_size_and_type_rules() -> None:
    assert seed_should_compress("gzip", "application/json", 999) is None
    assert seed_should_compress("gzip", "image/png", 100_000) is None
    assert seed_should_compress("deflate", "text/html; charset=utf-8", 5_000) == "deflate"


def test_table_sets_each_seed_answer_beside_the_correct_one() -> None:
    table = seed_negotiation_table().set_index("Accept-Encoding")
    assert list(table.index) == list(TRICKY_ACCEPT_ENCODINGS)
    for header, row in table.iterrows():
        assert row["correct"] == (choose_encoding(str(header), ("gzip", "deflate")) or "identity")
        assert (row["seed verdict"] == "right") == (row["seed"] == row["correct"] == row["server"])
    assert table.loc["gzip;q=0", ["seed", "correct"]].tolist() == ["gzip", "identity"]
    assert table.loc["gzip;q=0", "seed verdict"] == "sends gzip, which the client refused"
    assert table.loc["GZIP", ["seed", "correct"]].tolist() == ["identity", "gzip"]
    assert table.loc["br;q=1, gzip;q=0.5", "server"] == "br"
    assert table.loc["gzip;q=2", "seed verdict"] == "sends gzip for a malformed header"
    assert table.loc["*;q=0", "seed verdict"] == "right"


async def test_the_real_middleware_honours_what_the_seed_gets_wrong() -> None:
    """The seed sends gzip to ``gzip;q=0``: the client refused it, and the middleware sends it plain."""
    body = b'{"items": [' + b'{"id": 1, "name": "product"},' * 500 + b"{}]}"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    served = CompressionMiddleware(app, encodings=("gzip", "deflate"), minimum_size=1000)
    for header in TRICKY_ACCEPT_ENCODINGS:
        status, headers, sent = await asgi_get(served, "/", accept=header)
        coding = headers.get("content-encoding", "identity")
        assert status == 200
        assert coding == (choose_encoding(header, ("gzip", "deflate")) or "identity"), header
        assert (sent if coding == "identity" else decompress(coding, sent)) == body
        try:
            refused = {c for c, q in parse_accept_encoding(header).items() if q == 0}
        except ValueError:
            refused = set()
        assert coding not in refused

"""Accept-Encoding parsing and negotiation: a table of real and malformed headers."""

from __future__ import annotations

import pytest

from perf.compression.accept_encoding import choose_encoding, parse_accept_encoding

SERVER = ("zstd", "br", "gzip", "deflate")

# (header, what the server sends; None = identity)
CASES = [
    (None, None),                                         # no header: do not guess
    ("", None),                                           # empty: identity only
    ("gzip", "gzip"),
    ("GZIP", "gzip"),                                     # codings are case-insensitive
    ("x-gzip", "gzip"),                                   # legacy alias
    ("gzip, deflate, br", "br"),                          # equal q: server preference
    ("gzip, deflate, br, zstd", "zstd"),                  # what current Chrome sends
    ("deflate", "deflate"),
    ("br;q=0.5, gzip;q=0.9", "gzip"),                     # client preference wins
    ("br;q=1.0, gzip;q=1", "br"),
    ("gzip;q=0", None),                                   # an explicit refusal
    ("gzip;q=0, br;q=0.001", "br"),
    ("*", "zstd"),                                        # anything: our favourite
    ("*;q=0.5, zstd;q=0", "br"),                          # * covers what is not listed
    ("*;q=0", None),
    ("identity", None),
    ("identity;q=0", None),                               # refuses identity, accepts nothing we have
    ("identity;q=1, gzip;q=0.5", None),                   # client prefers the plain body
    ("identity;q=0.1, gzip;q=0.5", "gzip"),
    ("compress, sdch", None),                             # codings we do not offer
    ("gzip ; q=0.8 , br ; q = 0.9", "br"),                # optional whitespace around ; and =
    (" , gzip,, ", "gzip"),                               # empty list elements are allowed
    ("gzip, gzip;q=0", "gzip"),                           # first mention wins
    # malformed: identity, never an error
    ("gzip;q=2", None),                                   # q above 1
    ("gzip;q=0.0001", None),                              # more than 3 decimals
    ("gzip;q=-1", None),
    ("gzip;q=abc", None),
    ("gzip;q=", None),
    ("gzip;level=9", None),                               # only q is a valid parameter
    ("gzip;q=0.5;q=0.6", None),
    ("gzip br", None),                                    # missing comma
    ("gz\"ip", None),                                     # not a token
    ("gzip;", None),
    ("\x00\xff", None),
]


@pytest.mark.parametrize(("header", "expected"), CASES)
def test_choose_encoding_table(header: str | None, expected: str | None) -> None:
    assert choose_encoding(header, SERVER) == expected


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 20


def test_parse_returns_weights() -> None:
    assert parse_accept_encoding("gzip;q=0.8, BR, *;q=0") == {"gzip": 0.8, "br": 1.0, "*": 0.0}


@pytest.mark.parametrize("header", ["gzip;q=2", "gzip br", "gzip;level=1", "gzip;q=0.5;q=0.6"])
def test_parse_names_the_bad_element(header: str) -> None:
    with pytest.raises(ValueError, match="Accept-Encoding element"):
        parse_accept_encoding(header)


def test_parse_rejects_bytes_with_a_fix() -> None:
    with pytest.raises(TypeError, match="latin-1"):
        parse_accept_encoding(b"gzip")  # type: ignore[arg-type]


def test_server_order_only_matters_on_ties() -> None:
    assert choose_encoding("gzip, br", ("gzip", "br")) == "gzip"
    assert choose_encoding("gzip, br", ("br", "gzip")) == "br"
    assert choose_encoding("gzip;q=0.4, br", ("gzip",)) == "gzip"

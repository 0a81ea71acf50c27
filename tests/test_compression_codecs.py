"""Codecs round-trip every level, stream with flushes, and reject bad levels by name."""

from __future__ import annotations

import gzip
import zlib

import brotli
import orjson
import pytest
import zstandard

from perf.compression.codecs import DEFAULT_LEVELS, LEVEL_RANGES, Codec, create_codec, decompress
from perf.compression.payloads import product_list, product_list_json

BODY = product_list_json(20_000)


@pytest.mark.parametrize("codec", [Codec(name, level) for name, levels in LEVEL_RANGES.items()
                                   for level in (levels.start, DEFAULT_LEVELS[name], levels.stop - 1)],
                         ids=lambda c: c.label)
def test_whole_body_round_trips_and_shrinks(codec: Codec) -> None:
    compressed = codec.compress(BODY)
    assert codec.decompress(compressed) == BODY
    assert len(compressed) < len(BODY) / 2


def test_output_is_what_standard_decoders_read() -> None:
    assert gzip.decompress(create_codec("gzip").compress(BODY)) == BODY
    assert zlib.decompress(create_codec("deflate").compress(BODY)) == BODY  # HTTP deflate = zlib format
    assert brotli.decompress(create_codec("br").compress(BODY)) == BODY
    assert zstandard.ZstdDecompressor().decompress(create_codec("zstd").compress(BODY)) == BODY


@pytest.mark.parametrize("name", sorted(DEFAULT_LEVELS))
def test_stream_flushes_each_chunk_so_a_client_can_decode_it_early(name: str) -> None:
    stream = create_codec(name).stream()
    chunks = [BODY[i:i + 3000] for i in range(0, len(BODY), 3000)]
    first = stream.compress(chunks[0])
    assert first, "a sync flush must emit bytes for the first chunk"
    out = [first] + [stream.compress(c) for c in chunks[1:]] + [stream.finish()]
    assert decompress(name, b"".join(out)) == BODY
    if name in ("gzip", "deflate"):  # a partial stream decodes up to the flush point
        partial = zlib.decompressobj(16 + 15 if name == "gzip" else 15).decompress(first)
        assert partial == chunks[0]


@pytest.mark.parametrize(("name", "level", "match"), [
    ("gzip", 0, "gzip level=0 is out of range: use an int from 1 to 9"),
    ("br", 12, "br level=12 is out of range"),
    ("zstd", 23, "zstd level=23"),
    ("lz4", 1, "codec name='lz4' is unknown"),
])
def test_bad_codec_names_and_levels_are_explained(name: str, level: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Codec(name, level)


def test_create_codec_uses_the_measured_default() -> None:
    assert create_codec("br") == Codec("br", DEFAULT_LEVELS["br"])
    assert all(level < LEVEL_RANGES[name].stop - 1 for name, level in DEFAULT_LEVELS.items())
    with pytest.raises(ValueError, match="unknown"):
        create_codec("compress")


def test_decompress_identity_and_unknown() -> None:
    assert decompress("identity", b"abc") == b"abc"
    with pytest.raises(ValueError, match="name='sdch'"):
        decompress("sdch", b"")


def test_payload_is_reproducible_sized_json() -> None:
    for size in (1_000, 10_000, 100_000):
        body = product_list_json(size)
        assert size <= len(body) < size * 1.2
        assert body == product_list_json(size)
        assert orjson.loads(body)["items"][0]["id"] == 1
    assert product_list_json(5_000, seed=1) != product_list_json(5_000, seed=2)
    assert product_list(3)["total"] == 3
    with pytest.raises(ValueError, match="size_bytes=0"):
        product_list_json(0)

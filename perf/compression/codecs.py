"""Content codings for HTTP responses: gzip, deflate, br (brotli) and zstd.

Each :class:`Codec` compresses a whole body (:meth:`Codec.compress`) or a stream chunk
by chunk (:meth:`Codec.stream`), where every ``compress(chunk)`` call ends with a sync
flush so the client can decode what it has received so far and the server never holds
more than one chunk plus the codec's window.

Default levels come from the ratio-vs-speed curve measured in
``notebooks/04_compression.ipynb`` (and ``python -m perf.bench.compression``) on the
product-list JSON: past these levels the ratio grows by a few percent while the
throughput falls steeply (br 11 and zstd 19 by two orders of magnitude).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Protocol

import brotli
import zstandard

#: Codings by server preference (best ratio per CPU first); ``identity`` is implicit.
PREFERENCE: tuple[str, ...] = ("zstd", "br", "gzip", "deflate")

#: Valid level range per coding.
LEVEL_RANGES: dict[str, range] = {
    "gzip": range(1, 10),
    "deflate": range(1, 10),
    "br": range(0, 12),
    "zstd": range(1, 23),
}

#: Default levels, picked from the measured curve (the knee), not the maximum.
DEFAULT_LEVELS: dict[str, int] = {"gzip": 6, "deflate": 6, "br": 4, "zstd": 3}


class StreamCompressor(Protocol):
    """Compresses one response body chunk by chunk."""

    def compress(self, chunk: bytes) -> bytes:
        """Compress ``chunk`` and flush, so everything so far can be decoded."""
        ...

    def finish(self) -> bytes:
        """End the stream (trailer, checksum); call once, last."""
        ...


class _ZlibStream:
    def __init__(self, level: int, wbits: int) -> None:
        self._obj = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def compress(self, chunk: bytes) -> bytes:
        return self._obj.compress(chunk) + self._obj.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._obj.flush(zlib.Z_FINISH)


class _BrotliStream:
    def __init__(self, level: int) -> None:
        self._obj = brotli.Compressor(quality=level)

    def compress(self, chunk: bytes) -> bytes:
        out: bytes = self._obj.process(chunk) + self._obj.flush()
        return out

    def finish(self) -> bytes:
        out: bytes = self._obj.finish()
        return out


class _ZstdStream:
    def __init__(self, level: int) -> None:
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, chunk: bytes) -> bytes:
        return self._obj.compress(chunk) + self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # HTTP "deflate" is zlib-wrapped


@dataclass(frozen=True)
class Codec:
    """One content coding at one level, e.g. ``Codec("br", 4)``."""

    name: str
    level: int

    def __post_init__(self) -> None:
        if self.name not in LEVEL_RANGES:
            raise ValueError(f"codec name={self.name!r} is unknown: use one of {sorted(LEVEL_RANGES)}")
        levels = LEVEL_RANGES[self.name]
        if not isinstance(self.level, int) or self.level not in levels:
            raise ValueError(f"{self.name} level={self.level!r} is out of range: "
                             f"use an int from {levels.start} to {levels.stop - 1}")

    @property
    def label(self) -> str:
        """``"name-level"``, e.g. ``"gzip-6"``."""
        return f"{self.name}-{self.level}"

    def compress(self, data: bytes) -> bytes:
        """Compress a whole body in one call."""
        if self.name in _WBITS:
            obj = zlib.compressobj(self.level, zlib.DEFLATED, _WBITS[self.name])
            return obj.compress(data) + obj.flush()
        if self.name == "br":
            packed: bytes = brotli.compress(data, quality=self.level)
            return packed
        return zstandard.ZstdCompressor(level=self.level).compress(data)

    def stream(self) -> StreamCompressor:
        """A fresh streaming compressor for one response body."""
        if self.name in _WBITS:
            return _ZlibStream(self.level, _WBITS[self.name])
        if self.name == "br":
            return _BrotliStream(self.level)
        return _ZstdStream(self.level)

    def decompress(self, data: bytes) -> bytes:
        """Inverse of :meth:`compress` (also decodes a flushed stream)."""
        return decompress(self.name, data)


def create_codec(name: str, level: int | None = None) -> Codec:
    """The codec ``name`` (gzip, deflate, br, zstd) at ``level`` or its measured default."""
    if name not in DEFAULT_LEVELS:
        raise ValueError(f"codec name={name!r} is unknown: use one of {sorted(DEFAULT_LEVELS)}")
    return Codec(name, DEFAULT_LEVELS[name] if level is None else level)


def decompress(name: str, data: bytes) -> bytes:
    """Decode ``data`` sent with ``Content-Encoding: name`` (what a client does)."""
    if name in _WBITS:
        obj = zlib.decompressobj(_WBITS[name])
        return obj.decompress(data) + obj.flush()
    if name == "br":
        unpacked: bytes = brotli.decompress(data)
        return unpacked
    if name == "zstd":
        # A streamed zstd body has no content size in its frame header: read it as a stream.
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if name == "identity":
        return data
    raise ValueError(f"content coding name={name!r} is unknown: use one of {sorted(DEFAULT_LEVELS)} or 'identity'")

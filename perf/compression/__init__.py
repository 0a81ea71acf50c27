"""Correct, measured response compression (notebook ``04_compression``).

* :mod:`perf.compression.codecs`: gzip, deflate, br, zstd at measured default levels.
* :mod:`perf.compression.accept_encoding`: ``Accept-Encoding`` parsing and negotiation.
* :mod:`perf.compression.middleware`: the pure ASGI middleware (``app.wrap_asgi`` in Nexios).
* :mod:`perf.compression.naive`: the seed's Nexios function middleware: what NOT to do.
* :mod:`perf.compression.payloads`: a realistic product-list JSON of a chosen size.
"""

from perf.compression.accept_encoding import choose_encoding, parse_accept_encoding
from perf.compression.codecs import DEFAULT_LEVELS, PREFERENCE, Codec, create_codec, decompress
from perf.compression.middleware import NO_COMPRESSION_HEADER, CompressionMiddleware, disable_compression

__all__ = [
    "DEFAULT_LEVELS", "NO_COMPRESSION_HEADER", "PREFERENCE", "Codec", "CompressionMiddleware",
    "choose_encoding", "create_codec", "decompress", "disable_compression", "parse_accept_encoding",
]

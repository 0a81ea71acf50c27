"""Correct, measured response compression (notebook ``04_compression``).

* :mod:`perf.compression.codecs`: gzip, deflate, br, zstd at measured default levels.
* :mod:`perf.compression.accept_encoding`: ``Accept-Encoding`` parsing and negotiation.
* :mod:`perf.compression.middleware`: the pure ASGI middleware (``app.wrap_asgi`` in Nexios).
* :mod:`perf.compression.naive`: the seed's Nexios function middleware: what NOT to do.
* :mod:`perf.compression.payloads`: a realistic product-list JSON of a chosen size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.compression.accept_encoding import choose_encoding, parse_accept_encoding
from perf.compression.codecs import DEFAULT_LEVELS, PREFERENCE, Codec, create_codec, decompress
from perf.compression.middleware import NO_COMPRESSION_HEADER, CompressionMiddleware, disable_compression
from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.compression.demo_app import create_demo_app
    from perf.compression.demo_memory import compression_memory
    from perf.compression.demo_race import (
        asgi_get,
        codec_curve,
        codec_rounds,
        delivery_rounds,
        end_to_end,
        level_grid,
        transfer_times,
    )
    from perf.compression.naive import create_naive_compression_middleware, seed_negotiation_table
    from perf.compression.payloads import product_list_json

# The other names a notebook uses (apparatus included), imported on first use: a server that
# imports the middleware pays for none of them.
_LAZY = {
    "create_demo_app": "perf.compression.demo_app",
    "compression_memory": "perf.compression.demo_memory",
    **{name: "perf.compression.demo_race" for name in (
        "asgi_get", "codec_curve", "codec_rounds", "delivery_rounds", "end_to_end", "level_grid", "transfer_times")},
    "create_naive_compression_middleware": "perf.compression.naive",
    "seed_negotiation_table": "perf.compression.naive",
    "product_list_json": "perf.compression.payloads",
}
__all__ = [
    "Codec", "CompressionMiddleware", "DEFAULT_LEVELS", "NO_COMPRESSION_HEADER", "PREFERENCE", "asgi_get",
    "choose_encoding", "codec_curve", "codec_rounds", "compression_memory", "create_codec", "create_demo_app",
    "create_naive_compression_middleware", "decompress", "delivery_rounds", "disable_compression", "end_to_end",
    "level_grid", "parse_accept_encoding", "product_list_json", "seed_negotiation_table", "transfer_times",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

"""Buffering a body to compress it holds all of it; the streaming middleware holds about a chunk."""

from __future__ import annotations

import gzip

import pytest

from perf.compression.demo_memory import BufferingCompression, _serve, compression_memory, streamed_app


async def test_buffering_grows_with_the_body_while_streaming_stays_flat() -> None:
    frame = await compression_memory(sizes=[2**20, 16 * 2**20], repeat=1)
    peak = frame.pivot_table(index="body_mib", columns="way", values="python_peak_mib")
    assert peak.loc[16, "buffer then gzip"] >= 5 * peak.loc[1, "buffer then gzip"]  # linear in body size
    assert peak.loc[16, "buffer then gzip"] >= 16  # it held the whole body at once
    assert peak.loc[16, "streaming gzip"] < peak.loc[16, "buffer then gzip"] / 5  # about one chunk
    sent = frame.pivot_table(index="body_mib", columns="way", values="sent_bytes")
    assert (sent["streaming gzip"] < sent["no compression"] / 5).all()  # it did compress


async def test_buffering_middleware_sends_a_valid_gzip_body() -> None:
    bodies: list[bytes] = []

    async def app_send(message: dict) -> None:  # type: ignore[type-arg]
        bodies.append(message.get("body", b""))

    async def receive() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request"}

    app = BufferingCompression(streamed_app(100_000, chunk_bytes=10_000))
    await app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, app_send)
    assert gzip.decompress(b"".join(bodies)).count(b"\n") > 100
    assert await _serve(streamed_app(50_000)) >= 50_000
    with pytest.raises(ValueError, match="sizes"):
        await compression_memory(sizes=[0])

"""The measurements behind ``notebooks/04_compression`` and ``python -m perf.bench.compression``.

* :func:`perf.measure.compare_cpu` (imported here): interleaved comparison in CPU time.
* :func:`level_grid` / :func:`codec_curve`: ratio and MB/s per codec and level on one body.
* :func:`transfer_times`: compress + transfer + decompress time by client bandwidth.
* :func:`middleware_overhead`: the middleware's CPU per response vs calling the compressor.
* :func:`asgi_get`: one in-process GET through any ASGI app (no server, no client).
* :func:`break_even_mbit`: the client bandwidth below which compressing pays.
* :func:`end_to_end`: bytes on the wire and server CPU per response through real servers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from typing import Any

import httpx
import pandas as pd

from perf.asgi import ASGIApp, Message, Scope
from perf.compression.codecs import DEFAULT_LEVELS, LEVEL_RANGES, Codec, create_codec, decompress
from perf.compression.demo_server import DemoServer
from perf.compression.middleware import CompressionMiddleware
from perf.measure import compare_cpu


def level_grid(*, full: bool = True) -> dict[str, list[int]]:
    """Levels to measure per codec: every level (``full``) or a spread that skips most slow ones."""
    if full:
        return {name: list(levels) for name, levels in LEVEL_RANGES.items()}
    return {"gzip": [1, 4, 6, 9], "deflate": [1, 6, 9], "br": [0, 2, 4, 6, 9, 11], "zstd": [1, 3, 6, 12, 19]}


def codec_curve(body: bytes, levels: Mapping[str, Iterable[int]], *, repeat: int = 5,
                number: int = 1) -> pd.DataFrame:
    """Ratio and compress / decompress speed for each ``{codec: [levels]}`` on ``body``.

    All codec-levels are timed interleaved, round by round in a shuffled order, in CPU
    time (:func:`compare_cpu`), so neither drift nor other processes skew one level.
    One row per codec and level: ``codec``, ``level``, ``label``, ``bytes_in``,
    ``bytes_out``, ``ratio`` (in / out), ``compress_s`` and ``decompress_s`` (medians of
    ``repeat`` rounds), ``compress_iqr_pct`` (their spread), ``compress_mb_s`` and
    ``decompress_mb_s`` (MB of input per second). ``attrs["rounds"]`` keeps the CPU seconds
    of every round as records (:func:`codec_rounds` makes them a frame): a verdict needs
    them, not the medians (:func:`delivery_rounds`).
    """
    if not body:
        raise ValueError("body=b'' cannot be measured: pass a payload, e.g. product_list_json(100_000)")
    codecs = [Codec(name, level) for name, name_levels in levels.items() for level in name_levels]
    if not codecs:
        raise ValueError(f"levels={dict(levels)!r} names no level: pass e.g. {{'gzip': [1, 6, 9]}}")
    outputs = {codec.label: codec.compress(body) for codec in codecs}
    compress_cmp = compare_cpu({c.label: partial(c.compress, body) for c in codecs},
                               warmup=1, repeat=repeat, number=number)
    decompress_cmp = compare_cpu({c.label: partial(decompress, c.name, outputs[c.label]) for c in codecs},
                                 warmup=1, repeat=repeat, number=number)
    compress, decompress_ = compress_cmp.summary(), decompress_cmp.summary()
    rows = []
    for codec in codecs:
        out, c, d = outputs[codec.label], compress.loc[codec.label], decompress_.loc[codec.label]
        rows.append({"codec": codec.name, "level": codec.level, "label": codec.label, "bytes_in": len(body),
                     "bytes_out": len(out), "ratio": len(body) / len(out), "compress_s": float(c["median"]),
                     "compress_iqr_pct": float(c["iqr_pct"]), "decompress_s": float(d["median"]),
                     "compress_mb_s": len(body) / c["median"] / 1e6,
                     "decompress_mb_s": len(body) / d["median"] / 1e6})
    frame = pd.DataFrame(rows)
    rounds = compress_cmp.samples.rename(columns={"variant": "label", "seconds": "compress_s"}).merge(
        decompress_cmp.samples.rename(columns={"variant": "label", "seconds": "decompress_s"}), on=["label", "round"])
    frame.attrs["rounds"] = rounds.to_dict("records")  # records, not a frame: pandas compares attrs with ==
    return frame


def codec_rounds(curve: pd.DataFrame) -> pd.DataFrame:
    """The rounds behind :func:`codec_curve`'s medians: ``label``, ``round``, ``compress_s``, ``decompress_s``."""
    records = curve.attrs.get("rounds")
    if records is None:
        raise ValueError("curve has no attrs['rounds']: pass the frame codec_curve returned")
    return pd.DataFrame.from_records(records).sort_values(["label", "round"], ignore_index=True)


def delivery_rounds(curve: pd.DataFrame, label: str, bandwidth_mbit: float) -> list[float]:
    """Seconds to deliver ``curve``'s body as ``label`` at ``bandwidth_mbit``, one figure per timed round.

    compress + decompress CPU of that round plus the transfer of its bytes (the same in every
    round); ``label="identity"`` is the transfer of the uncompressed body. ``curve`` comes
    from :func:`codec_curve`, whose ``attrs["rounds"]`` hold the rounds.
    """
    if bandwidth_mbit <= 0:
        raise ValueError(f"bandwidth_mbit={bandwidth_mbit!r} must be > 0 (Mbit/s)")
    rounds = codec_rounds(curve)
    n = int(rounds["round"].nunique())
    if label == "identity":
        return [int(curve["bytes_in"].iloc[0]) * 8 / (bandwidth_mbit * 1e6)] * n
    mine = rounds[rounds["label"] == label].sort_values("round")
    if mine.empty:
        raise KeyError(f"no codec-level {label!r} in curve; have {sorted(rounds['label'].unique())}")
    transfer = int(curve.loc[curve["label"] == label, "bytes_out"].iloc[0]) * 8 / (bandwidth_mbit * 1e6)
    return [float(c + d + transfer) for c, d in zip(mine["compress_s"], mine["decompress_s"], strict=True)]


def transfer_times(curve: pd.DataFrame, bandwidths_mbit: Sequence[float], *,
                   rtt_s: float = 0.0) -> pd.DataFrame:
    """Time to deliver the body at each client bandwidth: compress + transfer + decompress.

    ``curve`` comes from :func:`codec_curve` (pick the rows to compare first). An
    ``identity`` row (no compression) is added. ``rtt_s`` is added to every row alike.
    Columns: ``bandwidth_mbit``, ``label``, ``total_s``, ``transfer_s``, ``cpu_s``.
    """
    if any(b <= 0 for b in bandwidths_mbit):
        raise ValueError(f"bandwidths_mbit={list(bandwidths_mbit)!r} must all be > 0 (Mbit/s)")
    settings = [("identity", int(curve["bytes_in"].iloc[0]), 0.0)]
    settings += [(r.label, int(r.bytes_out), float(r.compress_s + r.decompress_s)) for r in curve.itertuples()]
    rows = []
    for bandwidth in bandwidths_mbit:
        for label, size, cpu in settings:
            transfer = size * 8 / (bandwidth * 1e6)
            rows.append({"bandwidth_mbit": bandwidth, "label": label, "total_s": cpu + transfer + rtt_s,
                         "transfer_s": transfer, "cpu_s": cpu})
    return pd.DataFrame(rows)


def _http_scope(path: str, accept: str | None) -> dict[str, Any]:
    path, _, query = path.partition("?")
    headers = [(b"host", b"bench")] + ([(b"accept-encoding", accept.encode())] if accept else [])
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}


async def asgi_get(app: ASGIApp, path: str, *, accept: str | None = "gzip") -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from ``app`` in process; return status, headers and the body as sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_http_scope(path, accept), receive, send)
    start = sent[0]
    headers = {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in start["headers"]}
    status: int = start["status"]
    return status, headers, b"".join(m.get("body", b"") for m in sent[1:])


def _body_app(body: bytes) -> ASGIApp:
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})
    return app


def _run_sync(coro: Any) -> None:
    # The apps here never wait on I/O, so one send() runs the coroutine to the end.
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("the ASGI app awaited real I/O: measure it with an event loop instead")


def middleware_overhead(body: bytes, *, codings: Sequence[str] = tuple(DEFAULT_LEVELS), repeat: int = 30,
                        number: int = 5) -> pd.DataFrame:
    """Per coding: the middleware's time per response vs ``codec.compress(body)`` alone.

    Both run interleaved in one :func:`compare_cpu` (CPU time); the middleware wraps a
    raw ASGI app sending ``body`` in one message, driven without an event loop, so the
    difference is the middleware's own work (negotiation, headers, copies). Columns:
    ``coding``, ``direct_s``, ``middleware_s``, ``ratio`` (median of per-round ratios).
    """
    rows = []
    for coding in codings:
        codec = create_codec(coding)
        mw = CompressionMiddleware(_body_app(body), encodings=(coding,), minimum_size=0)
        scope = _http_scope("/", coding)

        cmp = compare_cpu({"direct": partial(codec.compress, body),
                           "middleware": partial(_through_middleware, mw, scope)},
                          warmup=2, repeat=repeat, number=number)
        summary = cmp.summary()
        rows.append({"coding": codec.label, "direct_s": summary.loc["direct", "median"],
                     "middleware_s": summary.loc["middleware", "median"],
                     "middleware_iqr_pct": summary.loc["middleware", "iqr_pct"],
                     "ratio": cmp.ratio("middleware", "direct")})
    return pd.DataFrame(rows)


async def _noop(message: Any = None) -> Any:
    return {"type": "http.request"}


def _through_middleware(mw: CompressionMiddleware, scope: Scope) -> None:
    _run_sync(mw(scope, _noop, _noop))


def break_even_mbit(bytes_in: int, bytes_out: int, cpu_s: float) -> float:
    """Client bandwidth (Mbit/s) below which compressing pays: ``cpu + out/B < in/B``.

    ``cpu_s`` is compress + decompress time. Infinite when compression costs no time.
    """
    if bytes_out >= bytes_in:
        return 0.0
    if cpu_s <= 0:
        return float("inf")
    return (bytes_in - bytes_out) * 8 / cpu_s / 1e6


def end_to_end(settings: Mapping[str, Mapping[str, Any]], *, path: str, requests: int = 20,
               batches: int = 5, accept: str = "zstd, br, gzip, deflate", seed: int = 0) -> pd.DataFrame:
    """Serve the demo app once per setting (all at once) and GET ``path`` in interleaved batches.

    ``settings`` maps a label to :class:`~perf.compression.demo_server.DemoServer` keyword
    arguments, e.g. ``{"br-4": {"mode": "asgi", "encodings": ("br",), "levels": {"br": 4}}}``.
    Each of ``batches`` rounds runs ``requests`` GETs against every server, in a shuffled
    order, so machine drift hits all settings alike. One row per setting and batch:
    ``setting``, ``batch``, ``encoding``, ``wire_bytes`` (body bytes per response),
    ``server_cpu_s`` (server process CPU per response), ``latency_s`` (median in the batch).
    """
    if requests < 1 or batches < 1:
        raise ValueError(f"requests={requests!r} and batches={batches!r} must both be >= 1")
    rng = random.Random(seed)
    rows = []
    with ExitStack() as stack:
        clients = {}
        for label, kwargs in settings.items():
            server = stack.enter_context(DemoServer(**kwargs))
            client = stack.enter_context(httpx.Client(base_url=server.url, timeout=30))
            client.headers["accept-encoding"] = accept
            for _ in range(3):  # warm up: payload cache, first connection
                client.get(path).read()
            clients[label] = (server, client)
        for batch in range(batches):
            for label in rng.sample(list(clients), len(clients)):
                server, client = clients[label]
                latencies, wire = [], 0
                cpu0 = server.cpu_seconds()
                for _ in range(requests):
                    response = client.get(path)
                    latencies.append(response.elapsed.total_seconds())
                    wire += response.num_bytes_downloaded
                rows.append({"setting": label, "batch": batch,
                             "encoding": response.headers.get("content-encoding", "identity"),
                             "wire_bytes": wire / requests,
                             "server_cpu_s": (server.cpu_seconds() - cpu0) / requests,
                             "latency_s": float(pd.Series(latencies).median())})
    frame = pd.DataFrame(rows)
    order = {label: i for i, label in enumerate(settings)}
    return frame.sort_values(["setting", "batch"], key=lambda c: c.map(order) if c.name == "setting" else c,
                             ignore_index=True)

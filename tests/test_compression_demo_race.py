"""The notebook's measurement helpers: shapes, invariants and the transfer-time model."""

from __future__ import annotations

import pandas as pd
import pytest

from perf.compression.codecs import DEFAULT_LEVELS, decompress
from perf.compression.demo_app import create_demo_app
from perf.compression.demo_race import (
    asgi_get,
    break_even_mbit,
    codec_curve,
    end_to_end,
    level_grid,
    middleware_overhead,
    transfer_times,
)
from perf.compression.naive import create_naive_compression_middleware
from perf.compression.payloads import product_list_json

BODY = product_list_json(30_000)


def test_codec_curve_reports_ratio_and_speed_per_level() -> None:
    curve = codec_curve(BODY, {"gzip": [1, 9], "zstd": [3]}, repeat=2)
    assert list(curve["label"]) == ["gzip-1", "gzip-9", "zstd-3"]
    assert (curve["ratio"] > 2).all()
    assert curve.loc[1, "bytes_out"] <= curve.loc[0, "bytes_out"]  # a higher level is never bigger here
    assert (curve["compress_mb_s"] > 0).all() and (curve["decompress_mb_s"] > 0).all()
    with pytest.raises(ValueError, match="body=b''"):
        codec_curve(b"", {"gzip": [1]})


def test_delivery_rounds_and_a_crossover_only_where_the_data_cross() -> None:
    from perf.compression.demo_race import delivery_rounds
    from perf.measure import crossover

    curve = codec_curve(BODY, {"gzip": [6]}, repeat=3)
    assert len(delivery_rounds(curve, "gzip-6", 10)) == 3
    assert delivery_rounds(curve, "identity", 1) == [pytest.approx(len(BODY) * 8 / 1e6)] * 3
    # 1 kbit/s: transfer dominates, gzip wins by its ratio (> 2x); 1 Tbit/s: transfer is nothing, identity wins
    bandwidths = [0.001, 1_000_000]
    verdict = crossover(bandwidths, [delivery_rounds(curve, "gzip-6", b) for b in bandwidths],
                        [delivery_rounds(curve, "identity", b) for b in bandwidths], a="gzip-6", b="identity")
    assert verdict.kind == "crosses" and 0.001 < verdict.estimate < 1_000_000
    with pytest.raises(KeyError, match="no codec-level 'br-4'"):
        delivery_rounds(curve, "br-4", 10)


def test_transfer_model_favours_compression_on_slow_links_only() -> None:
    curve = pd.DataFrame([{"label": "gzip-6", "bytes_in": 1_000_000, "bytes_out": 250_000,
                           "compress_s": 0.010, "decompress_s": 0.002}])
    times = transfer_times(curve, [1, 10_000]).set_index(["bandwidth_mbit", "label"])["total_s"]
    assert times[(1, "identity")] == pytest.approx(8.0)
    assert times[(1, "gzip-6")] == pytest.approx(2.012)
    assert times[(10_000, "identity")] < times[(10_000, "gzip-6")]
    with pytest.raises(ValueError, match="bandwidths_mbit"):
        transfer_times(curve, [0])


def test_middleware_overhead_has_one_row_per_coding() -> None:
    table = middleware_overhead(BODY, codings=("gzip", "br"), repeat=3, number=1)
    assert list(table["coding"]) == ["gzip-6", "br-4"]
    assert (table[["direct_s", "middleware_s", "ratio"]] > 0).all().all()


async def test_asgi_get_drives_nexios_in_process() -> None:
    status, headers, body = await asgi_get(create_demo_app(mode="asgi"), "/products?size=30000", accept="br")
    assert status == 200 and headers["content-encoding"] == "br"
    assert decompress("br", body) == BODY
    stats: dict[str, int] = {}
    app = create_demo_app(mode="none")
    app.add_middleware(create_naive_compression_middleware(stats=stats))
    status, headers, body = await asgi_get(app, "/products?size=30000", accept="gzip")
    assert "content-encoding" not in headers and body == BODY
    assert stats == {"requests": 1, "empty_body": 1, "compressed": 0}


def test_end_to_end_measures_wire_bytes_and_server_cpu() -> None:
    table = end_to_end({"none": {"mode": "none"}, "gzip": {"mode": "asgi", "encodings": ("gzip",)}},
                       path="/products?size=30000", requests=3, batches=2)
    assert list(table["setting"]) == ["none", "none", "gzip", "gzip"]
    last = table.groupby("setting").last()
    assert last.loc["none", "encoding"] == "identity" and last.loc["gzip", "encoding"] == "gzip"
    assert last.loc["gzip", "wire_bytes"] < last.loc["none", "wire_bytes"] / 2
    assert (table["server_cpu_s"] >= 0).all() and (table["latency_s"] > 0).all()
    with pytest.raises(ValueError, match="requests=0"):
        end_to_end({}, path="/", requests=0)


def test_break_even_bandwidth() -> None:
    # 750 kB saved for 6 ms of CPU: pays below 1,000 Mbit/s.
    assert break_even_mbit(1_000_000, 250_000, 0.006) == pytest.approx(1000.0)
    assert break_even_mbit(1000, 1200, 0.001) == 0.0
    assert break_even_mbit(1000, 500, 0.0) == float("inf")


def test_sync_driver_refuses_apps_that_wait_on_io() -> None:
    import types

    from perf.compression.demo_race import _run_sync

    @types.coroutine
    def suspend():  # noqa: ANN202 - what awaiting a socket does: hand control to the loop
        yield

    async def waits() -> None:
        await suspend()

    with pytest.raises(RuntimeError, match="awaited real I/O"):
        _run_sync(waits())


def test_level_grid_covers_every_level_or_a_quick_spread() -> None:
    full, quick = level_grid(full=True), level_grid(full=False)
    assert full["zstd"] == list(range(1, 23)) and full["br"] == list(range(0, 12))
    for name, levels in quick.items():
        assert set(levels) <= set(full[name])
        assert DEFAULT_LEVELS[name] in levels


def test_compare_cpu_counts_cpu_not_sleep() -> None:
    import time

    from perf.measure import compare_cpu

    def spin() -> None:
        end = time.thread_time() + 0.005
        while time.thread_time() < end:
            pass

    result = compare_cpu({"sleep": lambda: time.sleep(0.005), "spin": spin}, warmup=0, repeat=3)
    summary = result.summary()
    assert summary.loc["sleep", "median"] < 0.001  # 5 ms asleep costs (almost) no CPU
    assert summary.loc["spin", "median"] >= 0.005
    assert result.ratio("spin", "sleep") > 5
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        compare_cpu({"spin": spin}, repeat=0)

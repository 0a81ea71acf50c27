import asyncio
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from perf.measure import (
    LatencyHistogram,
    compare_async,
    compare_sync,
    machine_info,
    percentile_table,
    service_versions,
    summarize,
    time_async,
    time_sync,
)


def test_summarize_known_values() -> None:
    samples = pd.DataFrame({"variant": ["a"] * 5 + ["b"] * 4, "seconds": [1, 2, 3, 4, 100, 10, 10, 10, 10]})
    summary = summarize(samples)
    assert list(summary.index) == ["a", "b"]
    a = summary.loc["a"]
    assert (a["n"], a["median"], a["min"], a["max"]) == (5, 3, 1, 100)
    assert (a["q1"], a["q3"], a["iqr"]) == (2, 4, 2)  # the outlier moves max, not the median or IQR
    assert summary.loc["b", "iqr"] == 0


def test_summarize_names_missing_column() -> None:
    with pytest.raises(KeyError, match="no column 'seconds'"):
        summarize(pd.DataFrame({"variant": ["a"], "time": [1.0]}))


def test_time_sync_counts_calls_and_validates() -> None:
    calls = []
    timing = time_sync(lambda: calls.append(1), warmup=2, repeat=5, number=3, label="append")
    assert len(calls) == 2 + 5 * 3
    assert len(timing.samples) == 5 and timing.label == "append"
    assert timing.summary().loc["append", "n"] == 5
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        time_sync(lambda: None, repeat=0)

    async def coro() -> None: ...

    with pytest.raises(TypeError, match="time_async"):
        time_sync(coro)


async def test_time_async_measures_the_await() -> None:
    timing = await time_async(lambda: asyncio.sleep(0.01), warmup=1, repeat=3)
    assert min(timing.samples) >= 0.009


def test_compare_sync_ratios_are_round_by_round() -> None:
    import time as _time

    comparison = compare_sync(
        {"slow": lambda: _time.sleep(0.01), "fast": lambda: None}, warmup=1, repeat=5
    )
    assert set(comparison.samples["variant"]) == {"slow", "fast"}
    assert len(comparison.samples) == 10
    assert comparison.baseline == "slow"
    ratio = comparison.ratio("fast")
    assert ratio < 0.2  # a no-op vs a 10 ms sleep: far more than 5x apart
    summary = comparison.summary()
    assert summary.loc["slow", "ratio_to_baseline"] == 1.0
    with pytest.raises(ValueError, match="baseline 'nope'"):
        compare_sync({"a": lambda: None}, baseline="nope")
    with pytest.raises(KeyError, match="no variant named 'x'"):
        comparison.ratio("x")


async def test_compare_async_interleaves() -> None:
    order: list[str] = []

    def variant(name: str):
        async def run() -> None:
            order.append(name)
        return run

    comparison = await compare_async({"a": variant("a"), "b": variant("b")}, warmup=0, repeat=4, shuffle=False)
    assert order == ["a", "b"] * 4
    assert list(comparison.ratios().query("variant == 'a'")["ratio"]) == [1.0] * 4


def test_histogram_percentiles_of_known_distribution() -> None:
    hist = LatencyHistogram.from_samples([i / 1000 for i in range(1, 1001)])  # 1..1000 ms
    p = hist.percentiles()
    assert p["count"] == 1000
    assert p["p50"] == pytest.approx(0.500, rel=0.01)
    assert p["p90"] == pytest.approx(0.900, rel=0.01)
    assert p["p99"] == pytest.approx(0.990, rel=0.01)
    assert p["max"] == pytest.approx(1.0, rel=0.01) and p["min"] == pytest.approx(0.001, rel=0.01)
    assert hist.mean == pytest.approx(0.5005, rel=0.01)


def test_histograms_merge_instead_of_averaging_percentiles() -> None:
    fast = LatencyHistogram.from_samples([0.001] * 990)
    slow = LatencyHistogram.from_samples([1.0] * 10)
    merged = fast + slow
    assert merged.count == 1000
    assert merged.percentile(99) == pytest.approx(0.001, rel=0.01)
    assert merged.percentile(99.5) == pytest.approx(1.0, rel=0.01)
    # Across processes: encode, decode, merge.
    shipped = LatencyHistogram.decode(slow.encode())
    assert shipped.count == 10 and shipped.percentile(50) == pytest.approx(1.0, rel=0.01)
    table = percentile_table({"merged": merged})
    assert table.loc["merged", "count"] == 1000 and "p99_ms" in table.columns


def test_histogram_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="empty"):
        LatencyHistogram().percentile(50)
    with pytest.raises(ValueError, match="percentile must be in"):
        LatencyHistogram.from_samples([0.1]).percentile(0)


def test_coordinated_omission_correction_fills_in_missed_samples() -> None:
    hist = LatencyHistogram()
    for _ in range(99):
        hist.record_corrected(0.001, expected_interval=0.01)
    hist.record_corrected(1.0, expected_interval=0.01)  # one stall that blocked ~99 sends
    assert hist.count > 150
    assert hist.percentile(90) > 0.1  # the naive histogram would say 1 ms


async def test_machine_info_and_versions(database_url: str, redis_url: str) -> None:
    info = machine_info()
    assert info["cpus"] >= 1 and info["python"].count(".") == 2
    versions = await service_versions(database_url=database_url, redis_url=redis_url)
    assert versions["postgres"].startswith("PostgreSQL ") and versions["redis"].startswith(("Valkey ", "Redis "))


# --- prose computed from the run: each claim tested with data on both sides -----------------

def test_describe_ratio_names_whichever_side_won() -> None:
    from perf.measure import describe_ratio

    assert describe_ratio("PostgreSQL", 132e-6, "Redis", 212e-6) == "PostgreSQL was 1.6x quicker than Redis"
    assert describe_ratio("PostgreSQL", 212e-6, "Redis", 132e-6) == "PostgreSQL was 1.6x slower than Redis"
    assert "about the same" in describe_ratio("PostgreSQL", 100e-6, "Redis", 102e-6)
    with pytest.raises(ValueError, match="other_seconds must be a positive"):
        describe_ratio("a", 1.0, "b", 0.0)


def test_describe_tail_says_several_times_only_when_it_is() -> None:
    from perf.measure import describe_tail

    assert "several times" not in describe_tail(1e-3, 1.6e-3) and "short tail" in describe_tail(1e-3, 1.6e-3)
    assert "several times" not in describe_tail(1e-3, 2.1e-3) and "2.1x" in describe_tail(1e-3, 2.1e-3)
    assert "several times" in describe_tail(1e-3, 4.0e-3)


def test_describe_gain_does_not_call_noise_a_win() -> None:
    from perf.measure import describe_gain

    change = "separate connections"
    assert "no measurable difference" in describe_gain(1.01, change=change)
    assert "paid off" in describe_gain(1.9, change=change)
    assert "slower" in describe_gain(0.85, change=change)


def test_describe_combination_multiply_add_or_overlap() -> None:
    from perf.measure import describe_combination

    assert describe_combination({"a": 2.0, "b": 3.0}, 6.0).endswith("the speedups multiply")
    measured = describe_combination({"cache": 2.70, "pool": 4.13, "join": 1.92}, 9.6)
    assert "multiply" not in measured and "overlap" in measured and "21.4x" in measured
    assert "add at best" in describe_combination({"a": 2.0, "b": 3.0}, 3.5)
    assert "reinforce" in describe_combination({"a": 2.0, "b": 3.0}, 9.0)
    with pytest.raises(ValueError, match="singles must name"):
        describe_combination({}, 2.0)


def test_a_process_pinned_to_the_generator_cores_still_pins_a_server_elsewhere() -> None:
    """A benchmark pins itself (the generator) first, then starts the server: the server must not land
    on the generator's cores. (It did: the usable cores were read from the already-pinned process.)"""
    import json
    import subprocess
    import sys

    script = (
        "import json, os, subprocess\n"
        "from perf.services.server_process import pin_process, split_cores, usable_cores\n"
        "from perf.measure import machine_info\n"
        "server, generator = split_cores()\n"
        "pinned_self = pin_process(os.getpid(), generator)\n"
        "child = subprocess.Popen(['sleep', '5'])\n"
        "pinned_child = pin_process(child.pid, server)\n"
        "out = dict(server=sorted(server), generator=sorted(generator), self=sorted(os.sched_getaffinity(0)),\n"
        "           child=sorted(os.sched_getaffinity(child.pid)), pinned=[pinned_self, pinned_child],\n"
        "           split_after=[sorted(c) for c in split_cores()], usable=machine_info()['cpus_usable'])\n"
        "child.kill()\n"
        "print(json.dumps(out))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                    timeout=60).stdout)
    cores = sorted(os.sched_getaffinity(0))
    assert out["pinned"] == [True, True]
    assert out["self"] == out["generator"] and out["child"] == out["server"]
    assert out["split_after"] == [out["server"], out["generator"]]  # pinning itself hid no core
    assert out["usable"] == len(cores)
    if len(cores) >= 2:
        assert not set(out["server"]) & set(out["generator"])


def test_without_linux_facilities_measurement_degrades_with_one_message(monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture,
                                                                        tmp_path: Path) -> None:
    """As on macOS: no sched_*affinity, no /proc. CPU time comes from psutil, pinning says once why not."""
    from perf.services import server_process

    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(server_process, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(server_process, "_told_no_pinning", False)
    assert server_process.usable_cores() == set(range(os.cpu_count() or 1))
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    assert server_process.process_cpu_seconds(os.getpid()) >= 0.3  # psutil's figure, this process's CPU so far
    with caplog.at_level("WARNING", logger=server_process.__name__):
        assert server_process.pin_process(os.getpid(), {0}) is False
        assert server_process.pin_process(os.getpid(), {0}) is False
    said = [r.getMessage() for r in caplog.records if "pinning is not available" in r.getMessage()]
    assert len(said) == 1 and "side by side" in said[0]
    assert machine_info()["cpus_usable"] == os.cpu_count()

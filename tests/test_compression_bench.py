"""``python -m perf.bench.compression`` runs and prints every figure its issue names."""

from __future__ import annotations

import pytest

from perf.bench.compression import main


def test_bench_prints_codec_table_and_overhead_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size", "5000", "--repeat", "1", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    for label in ("gzip-6", "deflate-6", "br-4", "zstd-3"):
        assert f"{label}  " in out and "<- default" in out
        assert any(line.startswith(label) and "target <= 1.1x" in line for line in out.splitlines())
    assert "compress MB/s" in out and "decompress MB/s" in out

"""The stall test: the server stopped (SIGSTOP) mid open-model run must show in p99, max and the SLO.

Timing assertions here compare seconds of stall against a millisecond endpoint (far
beyond the 5x rule); the margin absorbs a slow machine.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perf.load.cli import main
from perf.load.demo_server import TestServer
from perf.load.demo_stall import StallRun, run_stalled
from perf.load.results import LoadResult

MARGIN = 0.15  # seconds: timer granularity and a busy 2-core machine


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def _assert_honest(run: StallRun) -> None:
    result = run.result
    result.check_accounting()
    p = result.overall().percentiles()
    assert p["p99"] >= run.floor - MARGIN, result.describe()
    assert p["max"] >= run.floor - MARGIN, result.describe()
    assert not all(c.met for c in run.checks), [c.describe() for c in run.checks]


async def test_stall_longer_than_the_timeout(server: TestServer) -> None:
    run = await run_stalled(server.url, server.pid, stall=2.0, stall_at=1.0, duration=3.0, timeout=1.0)
    _assert_honest(run)
    assert run.result.timed_out > 0  # in flight when given up: each counted at the second it waited


async def test_stall_shorter_than_the_timeout(server: TestServer) -> None:
    run = await run_stalled(server.url, server.pid, stall=2.0, stall_at=1.0, duration=3.0, timeout=5.0)
    _assert_honest(run)
    assert run.result.scheduled == run.result.completed == 300  # everything answered once the server woke up


async def test_stall_with_a_connection_cap_that_forces_drops(server: TestServer) -> None:
    run = await run_stalled(server.url, server.pid, stall=2.0, stall_at=1.0, duration=3.0, timeout=5.0,
                            connections=1, max_backlog=10)
    _assert_honest(run)
    result = run.result
    assert result.dropped > 50 and result.scheduled == 300
    assert result.censored_above is not None and result.censored_above < 99  # the report says so
    assert "lower bounds" in result.describe()


def _stop_later(pid: int, at: float, seconds: float) -> threading.Thread:
    def stop() -> None:
        time.sleep(at)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    return thread


def test_cli_stall_past_the_end_of_the_run(server: TestServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # Issue #12's reproduction: 100 req/s for 2 s, 4 connections, 1 s timeout, the server
    # stopped from t=0.5 s for 4 s (past the end of the run). All 200 are accounted.
    stopper = _stop_later(server.pid, 0.5, 4.0)
    out_json = tmp_path / "stall.json"
    code = main([server.url + "/", "--rate", "100", "--duration", "2s", "--connections", "4", "--timeout", "1s",
                 "--slo", "p99<100ms", "--json", str(out_json), "--no-progress"])
    stopper.join()
    out = capsys.readouterr().out
    assert code == 1, out
    back = LoadResult.from_dict(json.loads(out_json.read_text()))
    back.check_accounting()
    assert back.scheduled == 200
    assert back.overall().percentile(99) >= 1.0 - MARGIN
    assert "scheduled 200 = completed" in out and "MISSED" in out


def test_cli_stall_inside_the_run_with_a_long_timeout(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    stopper = _stop_later(server.pid, 1.5, 3.0)
    code = main([server.url + "/", "--rate", "100", "--duration", "6s", "--connections", "4", "--timeout", "10s",
                 "--slo", "p99<100ms", "--json", "-", "--no-progress"])
    stopper.join()
    out = capsys.readouterr().out
    assert code == 1, out
    summary = json.loads(out[out.index("{\n"):])["summary"]
    assert summary["scheduled"] == 600 == summary["completed"] + summary["failed"] + summary["timed_out"] + \
        summary["dropped"]
    assert summary["latency_ms"]["p99"] >= 2500

"""``perf load --engine locust``: a Locust master + workers against a real server on loopback."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from perf.load.cli import main
from perf.load.demo_server import TestServer
from perf.load.locust import LocustRunError, export_locustfile, run_locust
from perf.load.models import ClosedModel, OpenModel
from perf.load.results import LoadResult
from perf.measure.latency import LatencyHistogram


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def _server_count(server: TestServer) -> int:
    with urllib.request.urlopen(f"{server.url}/metrics") as response:
        return int(response.read().split()[1])


def test_two_workers_merge_counts_and_percentiles_exactly(server: TestServer, tmp_path: Path) -> None:
    before = _server_count(server)
    result = run_locust(server.url, model=ClosedModel(users=8, duration=3), workers=2, samples_dir=tmp_path)
    served = _server_count(server) - before - 1  # the second /metrics counts itself
    assert result.meta["engine"] == "locust" and result.meta["workers"] == 2
    per_worker = result.meta["worker_requests"]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values())
    assert result.completed == sum(per_worker.values())
    # a request still in flight at the stop is recorded as a give-up ("unfinished"); the server may or
    # may not have received it before its user was stopped
    assert result.completed <= served <= result.completed + result.timed_out
    samples = [float(x) for f in tmp_path.glob("*.txt") for x in f.read_text().split()]
    single = LatencyHistogram.from_samples(samples)  # answers and give-ups, as the histograms hold them
    assert single.count == result.completed + result.timed_out
    assert single.percentiles() == result.overall().percentiles()
    assert result.processes == 2 and result.client_cpu > 0
    assert result.scheduled == result.accounted >= result.completed  # every request the users started


def test_open_model_counts_late_requests_from_their_due_time(server: TestServer) -> None:
    result = run_locust(server.url, model=OpenModel(rate=200, duration=3, connections=4), workers=1,
                        scenario=None)
    assert result.offered_rate == 200 and result.completed > 100
    assert result.scheduled == result.accounted and "accounting_error" not in result.meta
    assert result.naive and result.overall().percentile(99) >= result.overall(naive=True).percentile(99)


@pytest.mark.parametrize(("slo", "code"), [("p99<10s", 0), ("p50<1us", 1)])
def test_slo_exit_codes_match_the_builtin_engine(server: TestServer, tmp_path: Path, slo: str, code: int,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "locust.json"
    assert main([f"{server.url}/", "--users", "4", "--duration", "2s", "--slo", slo]) == code
    assert main([f"{server.url}/", "--engine", "locust", "--workers", "2", "--users", "4", "--duration", "2s",
                 "--slo", slo, "--json", str(out)]) == code
    data = json.loads(out.read_text())
    assert data["engine"] == "locust" and data["workers"] == 2 and data["summary"]["completed"] > 0
    assert f"SLO {slo}" in capsys.readouterr().out


def test_a_worker_killed_mid_run_marks_the_run_incomplete(server: TestServer) -> None:
    box: dict[str, LoadResult | BaseException] = {}

    def run() -> None:
        try:
            box["result"] = run_locust(server.url, model=ClosedModel(users=4, duration=6), workers=2)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            box["result"] = exc

    thread = threading.Thread(target=run)
    started = time.monotonic()
    before = _server_count(server)
    thread.start()
    while _server_count(server) < before + 200:  # load is flowing: both workers are running
        assert time.monotonic() - started < 60, "the Locust run never started"
        time.sleep(0.2)
    workers = [p for p in psutil.Process().children(recursive=True) if "--worker" in p.cmdline()]
    assert len(workers) == 2
    workers[0].kill()
    thread.join(timeout=90)
    assert not thread.is_alive(), "the run hung after a worker was killed"
    result = box["result"]
    assert isinstance(result, LoadResult), result
    assert result.meta["incomplete"] is True and len(result.meta["lost_workers"]) == 1
    assert result.completed > 0


def test_expect_workers_times_out_naming_how_many_are_missing(server: TestServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LocustRunError, match=r"0 of 2 workers connected within 2s, 2 missing"):
        run_locust(server.url, model=ClosedModel(users=2, duration=2), workers=0, expect_workers=2,
                   expect_timeout=2)
    assert main([f"{server.url}/", "--engine", "locust", "--workers", "0", "--expect-workers", "1",
                 "--expect-timeout", "2s", "--duration", "1s"]) == 3
    assert "1 missing" in capsys.readouterr().err


def test_export_writes_a_standalone_readable_locustfile(tmp_path: Path) -> None:
    path = tmp_path / "locustfile.py"
    assert main(["http://127.0.0.1:1/", "--scenario", "perf.load.product:SCENARIO", "--export-locustfile",
                 str(path), "--think", "50ms"]) == 0
    text = path.read_text()
    compile(text, str(path), "exec")
    assert "from perf.load.product import" in text and "wait_time = constant(0.05)" in text
    assert "@task(12)" in text and "@task(4)" in text and "@task(3)" in text and "@task(1)" in text  # 60:20:15:5
    with pytest.raises(ValueError, match="module-level"):
        from perf.load.scenarios import Endpoint, Scenario

        export_locustfile(tmp_path / "x.py", Scenario([Endpoint("lam", lambda rng: "/")]))

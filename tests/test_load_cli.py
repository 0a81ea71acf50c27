"""``python -m perf load``: exit codes for met/missed/bad SLOs, JSON output, processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from perf.load.cli import build_parser, main, parse_duration
from perf.load.demo_server import TestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def test_met_slos_exit_zero_and_write_json(server: TestServer, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    code = main([server.url + "/delay/2", "--rate", "200", "--duration", "1s", "--slo", "p99<500ms",
                 "--slo", "errors<1%", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "SLO p99<500ms" in printed and "met" in printed
    data = json.loads(out.read_text())
    assert data["summary"]["completed"] == 200 and data["offered_rate"] == 200


def test_missed_slo_exits_one(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([server.url + "/delay/5", "--users", "2", "--duration", "0.5s", "--slo", "p50<1ms"]) == 1
    assert "MISSED" in capsys.readouterr().out


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_closed_port_exits_non_zero_and_json_stdout_parses(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    code = main([url, "--rate", "100", "--duration", "0.5s", "--timeout", "1s", "--json", "-"])
    captured = capsys.readouterr()
    assert code == 4, captured.err
    data = json.loads(captured.out)  # nothing but the JSON on stdout
    assert data["summary"]["completed"] == 0 and data["summary"]["failed"] > 0
    assert "nothing was measured" in captured.err and "scheduled" in captured.err


def test_the_default_error_budget_fails_a_run_without_an_errors_slo(server: TestServer,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # every request answers 500: completed (measured), but the error rate is 100%
    assert main([server.url + "/status/500", "--users", "2", "--duration", "0.3s"]) == 1
    printed = capsys.readouterr().out
    assert "SLO errors<1%" in printed and "MISSED" in printed
    # an errors SLO of the user's replaces the default budget
    assert main([server.url + "/status/500", "--users", "2", "--duration", "0.3s", "--slo", "errors<=100%"]) == 0
    capsys.readouterr()
    assert "errors<1%" in build_parser().format_help()


def test_errors_slo_counts_server_errors(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([server.url + "/status/500", "--users", "2", "--duration", "0.3s", "--slo", "errors<1%"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--slo", "p99<<3"], "cannot parse SLO"),
    (["--duration", "forever"], "duration must look like"),
    (["--rate", "-5"], "rate must be > 0"),
    (["--scenario", "nope"], "scenario must look like"),
])
def test_bad_arguments_exit_two_with_a_clear_message(server: TestServer, argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main([server.url + "/", *argv]) == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_perf_load_in_a_subprocess(server: TestServer) -> None:
    proc = subprocess.run([sys.executable, "-m", "perf", "load", server.url + "/", "--duration", "0.5s",
                           "--processes", "2", "--slo", "rps>10"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "× 2 processes" in proc.stdout


def test_parse_duration() -> None:
    assert parse_duration("20s") == 20 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("3") == 3


def test_remote_hosts_need_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["http://example.com/", "--duration", "1s"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_ramp_reports_the_knee(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    # /stall/4 caps the server near 250 req/s: the ramp 50, 150, 450 must break at 450 at the latest.
    code = main([server.url + "/stall/4", "--ramp", "50", "--ramp-factor", "3", "--duration", "1s",
                 "--slo", "p99<250ms", "--ramp-repeats", "3", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "max sustainable rate" in out and "first missed at" in out and "bracket" in out
    assert re.search(r"sustained [23]/3", out)  # the majority of its repeats
    assert main([server.url + "/", "--ramp", "50", "--ramp-repeats", "1"]) == 2
    assert "repeats must be >= 3" in capsys.readouterr().err


def test_calibrate_warning_and_recommendation_share_one_rule(server: TestServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Loading the trivial endpoint itself runs at (or near) the generator's ceiling. Whether
    # it is flagged depends on the machine; that the warning and [P1 client] agree does not.
    assert main([server.url + "/", "--calibrate", "/", "--users", "32", "--duration", "1s"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ceiling [\d,]+ req/s", out)
    # Both lines come from Calibration.is_client_bound (recomputing the rule from rounded
    # printed numbers could disagree with it at the boundary).
    assert ("warning: client-bound" in out) == ("[P1 client]" in out)


def test_sweep_prints_one_row_per_level(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([server.url + "/delay/5", "--users", "1..4", "--duration", "0.5s", "--warmup", "0.2s",
                 "--no-progress", "--slo", "errors<1%"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stops growing" in out or "still grew" in out
    assert "Little's law" in out and "little_ratio" in out


def test_a_long_run_prints_progress_every_second(server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([server.url + "/", "--rate", "50", "--duration", "3s"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "scheduled" in line and "p99" in line]
    assert len(lines) >= 2, captured.err
    assert "progress" not in captured.out and "scheduled 150 = completed 150" in captured.out
    assert main([server.url + "/", "--rate", "50", "--duration", "3s", "--no-progress"]) == 0
    assert "scheduled" not in capsys.readouterr().err

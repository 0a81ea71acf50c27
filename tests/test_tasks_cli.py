"""``tasks.py`` hands options to the tool underneath; ``tasks.py lab`` starts, serves and stops with its services."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from perf.services.process import pid_alive

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tasks  # noqa: E402  (the entry script, importable from the project root)


@pytest.mark.parametrize(("argv", "command", "options"), [
    (["lab", "--no-browser", "--port", "8899", "--ip=0.0.0.0"],
     "lab", ["--no-browser", "--port", "8899", "--ip=0.0.0.0"]),
    (["lab", "--help"], "lab", ["--help"]),
    (["test", "-x", "-k", "cache", "tests/test_db_ident.py"], "test", ["-x", "-k", "cache", "tests/test_db_ident.py"]),
    (["reset", "--yes", "--runs"], "reset", ["--yes", "--runs"]),
    (["services", "exec", "--", "pytest"], "services", ["exec", "--", "pytest"]),
])
def test_options_after_the_command_are_left_alone(argv: list[str], command: str, options: list[str]) -> None:
    args = tasks.build_parser().parse_args(argv)
    assert (args.command, args.options) == (command, options)


def test_help_states_the_pass_through_rule_once() -> None:
    shown = subprocess.run([sys.executable, "tasks.py", "--help"], cwd=ROOT, text=True, capture_output=True)
    assert shown.returncode == 0
    assert shown.stdout.count("goes, untouched, to the tool underneath") == 1


def test_a_literal_double_dash_is_not_passed_on() -> None:
    shown = subprocess.run([sys.executable, "tasks.py", "lab", "--", "--version"], cwd=ROOT, text=True,
                           capture_output=True, timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert re.search(r"^\d+\.\d+\.\d+$", shown.stdout, re.MULTILINE), shown.stdout
    assert " -- " not in shown.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)


def test_lab_serves_the_notebooks_and_stops_with_its_services(tmp_path: Path) -> None:
    port = _free_port()
    state_dir = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"PERF_STATE_DIR": str(state_dir), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    proc = subprocess.Popen([sys.executable, "tasks.py", "lab", "--no-browser", "--port", str(port)], cwd=ROOT,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            found = re.search(r"\[perf\] JupyterLab: (http://\S+/lab\?token=(\w+))", line)
            url = found and found.group(1)
        assert url, "no '[perf] JupyterLab: URL?token=' line:\n" + "".join(seen)
        assert f":{port}/" in url
        if os.geteuid() == 0:
            assert any("--allow-root" in line for line in seen)
        token = url.rsplit("token=", 1)[1]

        # Jupyter prints its URL as it binds; on a busy machine the first connect can come before it listens
        for _ in range(60):
            try:
                reply = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=30)
                break
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError) or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        with reply:
            assert reply.status == 200
            listed = {item["name"] for item in json.load(reply)["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= listed
        assert "00_setup.ipynb" in listed

        state = json.loads((state_dir / "services.json").read_text())
        server_pids = [state["postgres"]["pid"], state["redis"]["pid"]]
        assert all(pid_alive(pid) for pid in server_pids)

        proc.send_signal(signal.SIGTERM)  # to tasks.py only: it must pass the stop on
        assert proc.wait(timeout=60) == 0, "".join(seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    deadline = time.monotonic() + 20
    while any(pid_alive(pid) for pid in server_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(pid) for pid in server_pids), "the lab's PostgreSQL / Redis outlived it"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab still answers after the stop"


def test_the_uv_install_takes_pips_sources_from_its_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    # what `pip config list` prints (files and PIP_* variables) becomes uv's flags: uv reads no pip.conf
    listed = ("global.extra-index-url='file:///mirror/a file:///mirror/b'\n"
              "global.find-links='/wheels'\nglobal.cert='/etc/ssl/ca.pem'\ninstall.constraint='/etc/caps.txt'\n"
              ":env:.index-url='https://mirror.example/simple'\n:env:.default-timeout='180'\n")
    flags, env = tasks._uv_sources(listed)
    assert flags == ["--extra-index-url", "file:///mirror/a", "--extra-index-url", "file:///mirror/b",
                     "--find-links", "/wheels", "--constraint", "/etc/caps.txt",
                     "--index-url", "https://mirror.example/simple"]
    assert env == {"SSL_CERT_FILE": "/etc/ssl/ca.pem"}
    # and pip itself is asked: its environment variables reach the flags (no configuration file read)
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", "/here/wheels")
    assert tasks._pip_sources([sys.executable, "-m", "pip"]) == (["--find-links", "/here/wheels"], {})

"""Run a perf.load scenario on Locust: a headless master plus local worker processes.

Everything Locust runs in its own processes (``python -m locust``), so its gevent
monkey-patching never touches this process's asyncio loop. The master stops the run
after ``duration``, gathers each worker's HDR result (see :mod:`perf.load.locust.recorder`)
and writes the merged :class:`~perf.load.results.LoadResult`, read back here.

A run that lost a worker comes back with ``meta["incomplete"] = True`` and the lost
workers named; a run that cannot start raises :class:`LocustRunError` with the reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from perf.load.locust.locustfile import render_locustfile
from perf.load.models import ClosedModel, LoadModel, OpenModel
from perf.load.results import LoadResult
from perf.load.scenarios import Scenario, load_scenario
from perf.services.process import stop_processes

__all__ = ["LocustRunError", "MasterBind", "parse_master", "run_locust"]

#: Locust's default master port (workers connect to it over ZeroMQ).
DEFAULT_PORT = 5557


class LocustRunError(RuntimeError):
    """The Locust run could not start or finish (the message says why and what to do)."""


@dataclass(frozen=True)
class MasterBind:
    """Where the master listens for workers."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT


def parse_master(text: str, *, default_host: str = "127.0.0.1") -> MasterBind:
    """``"HOST:PORT"``, ``"HOST"`` or ``":PORT"`` -> :class:`MasterBind`.

    >>> parse_master("0.0.0.0:5557")
    MasterBind(host='0.0.0.0', port=5557)
    """
    host, sep, port = text.rpartition(":") if ":" in text else (text, "", "")
    host = host.strip("[]") or default_host
    try:
        number = int(port) if sep else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"master must look like HOST:PORT (e.g. 0.0.0.0:5557), got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"master port must be 0..65535, got {number!r}")
    return MasterBind(host, number)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_locust(base_url: str, *, model: LoadModel, scenario: str | Scenario | None = None, workers: int = 2,
               master_bind: str | MasterBind | None = None, expect_workers: int | None = None,
               expect_timeout: float = 30.0, spawn_rate: float | None = None, timeout: float = 10.0,
               worker_cpus: list[set[int]] | None = None, log_dir: str | Path | None = None,
               samples_dir: str | Path | None = None) -> LoadResult:
    """Run ``model`` with requests from ``scenario`` on a Locust master and ``workers`` local workers.

    ``expect_workers`` (default ``workers``) is how many workers the run waits for, local and
    remote ones started with ``python -m perf load-worker --master HOST:PORT``, for at most
    ``expect_timeout`` seconds. ``master_bind`` (default ``127.0.0.1`` on a free port) is where
    the master listens: bind ``0.0.0.0:5557`` for remote workers. ``spawn_rate`` defaults to all
    users within one second. ``worker_cpus`` pins each local worker (``os.sched_setaffinity``).
    ``log_dir`` keeps the locustfile and the Locust logs; ``samples_dir`` makes each worker
    also write its raw latencies there (to check the merge against one histogram).
    """
    if not 0 <= workers <= 64:
        raise ValueError(f"workers must be 0..64 local worker processes, got {workers!r}")
    expected = workers if expect_workers is None else expect_workers
    if expected < 1 or expected < workers:
        raise ValueError(f"expect_workers must be >= 1 and >= workers ({workers}), got {expect_workers!r}")
    if expect_timeout <= 0:
        raise ValueError(f"expect_timeout must be > 0 seconds, got {expect_timeout!r}")
    scn = load_scenario(scenario) if isinstance(scenario, str) else (scenario or Scenario.single("/"))
    if isinstance(model, OpenModel):
        users, duration = model.connections, model.total_seconds
    elif isinstance(model, ClosedModel):
        if model.max_requests is not None:
            raise ValueError("model.max_requests has no Locust equivalent: bound the run by duration")
        users, duration = model.users, model.duration
    else:
        raise TypeError(f"model must be a ClosedModel or OpenModel, got {type(model).__name__}")
    bind = parse_master(master_bind) if isinstance(master_bind, str) else (master_bind or MasterBind(port=0))
    if bind.port == 0:
        bind = MasterBind(bind.host, _free_port(bind.host))
    connect_host = "127.0.0.1" if bind.host in ("0.0.0.0", "", "*") else bind.host
    rate = spawn_rate if spawn_rate is not None else float(users)
    if rate <= 0:
        raise ValueError(f"spawn_rate must be > 0 users/s, got {spawn_rate!r}")
    with tempfile.TemporaryDirectory(prefix="perf-locust-") as tmp:
        work = Path(log_dir) if log_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        locustfile = work / "perf_locustfile.py"
        locustfile.write_text(render_locustfile(scn, model=model, timeout=timeout,
                                                source=scenario if isinstance(scenario, str) else ""))
        result_path = work / "result.json"
        result_path.unlink(missing_ok=True)
        master_cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--master",
                      "--master-bind-host", bind.host, "--master-bind-port", str(bind.port),
                      "--expect-workers", str(expected), "-u", str(users), "-r", f"{rate:g}",
                      "--host", base_url, "--stop-timeout", f"{timeout:g}", "--only-summary",
                      "--loglevel", "WARNING", "--perf-result", str(result_path),
                      "--perf-duration", f"{duration:g}", "--perf-expect-timeout", f"{expect_timeout:g}",
                      "--perf-model", model.describe() + f" × {expected} locust workers",
                      "--perf-collect-timeout", f"{timeout + 5:g}"]
        if samples_dir:
            master_cmd += ["--perf-samples", str(samples_dir)]
        if isinstance(model, OpenModel):
            master_cmd += ["--perf-rate", f"{model.rate:g}", "--perf-users", str(users),
                           "--perf-late-after", f"{model.late_after:g}"]
        worker_cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
                      "--master-host", connect_host, "--master-port", str(bind.port), "--loglevel", "WARNING"]
        logs: list[IO[bytes]] = []
        procs: list[subprocess.Popen[bytes]] = []
        try:
            master_log = open(work / "master.log", "wb")  # noqa: SIM115 (closed in finally)
            logs.append(master_log)
            master = subprocess.Popen(master_cmd, stdout=master_log, stderr=subprocess.STDOUT, cwd=os.getcwd())
            procs.append(master)
            for i in range(workers):
                wlog: IO[bytes] = open(work / f"worker{i}.log", "wb")  # noqa: SIM115
                logs.append(wlog)
                proc = subprocess.Popen(worker_cmd, stdout=wlog, stderr=subprocess.STDOUT, cwd=os.getcwd())
                procs.append(proc)
                if worker_cpus and hasattr(os, "sched_setaffinity"):
                    os.sched_setaffinity(proc.pid, worker_cpus[i % len(worker_cpus)])
            limit = expect_timeout + duration + 2 * timeout + 30
            try:
                code = master.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                raise LocustRunError(f"the Locust master did not finish within {limit:.0f}s (duration {duration:g}s); "
                                     f"its log ends:\n{_tail(work / 'master.log')}") from None
            payload = json.loads(result_path.read_text()) if result_path.exists() else None
        finally:
            stop_processes(*procs)
            for log in logs:
                log.close()
        if payload is None:
            raise LocustRunError(f"the Locust master exited with status {code} without a result; "
                                 f"its log ends:\n{_tail(work / 'master.log')}")
        if "result" not in payload:
            raise LocustRunError(str(payload.get("error", payload)))
        result = LoadResult.from_dict(payload["result"])
        result.model = model.describe() + f" × {len(payload['workers'])} locust workers"
        return result

"""Notebook 05's apparatus for load balancing: the syllabus' ``uvicorn.run(app, workers=4)``, then
one worker vs two on a CPU-bound route at saturation, and how requests spread over the workers.

* :func:`run_app_object_workers` runs the syllabus' line in a subprocess (a tiny ASGI app
  object, ``workers=4``) with a timeout and returns its exit status and output: uvicorn
  refuses to start workers for an app object (it must re-import the app in each worker
  process, so it needs an import string).
* :func:`compare_workers` starts the product API with 1, then N workers the right way
  (:class:`~perf.api.server.ApiServer` passes ``--workers`` and an import string), runs the
  concurrency sweep (:func:`perf.load.concurrency`) on one route per round, and counts the
  requests each worker served (``/metrics.json`` answers with its worker's ``pid`` and count).

>>> run_app_object_workers().returncode           # 3: uvicorn's STARTUP_FAILURE
>>> cmp = await compare_workers(ApiSettings(...), workers=(1, 2), users=[4, 16, 64], rounds=2)
>>> cmp.levels, cmp.spread
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import pandas as pd

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.load.concurrency import sweep
from perf.load.scenarios import Endpoint, Scenario
from perf.services.cpu import process_cpu_seconds
from perf.services.process import free_port
from perf.services.server_process import start_together

_SYLLABUS = """
import uvicorn

async def app(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"hello"}})

uvicorn.run(app, host="127.0.0.1", port={port}, workers={workers})
"""


@dataclass(frozen=True)
class AppObjectRun:
    """What ``uvicorn.run(app, workers=N)`` did: exit status (None: still running at the timeout) and output."""

    returncode: int | None
    output: str
    seconds: float


def run_app_object_workers(*, workers: int = 4, timeout: float = 15.0) -> AppObjectRun:
    """Run the syllabus' ``uvicorn.run(app, ..., workers=workers)`` with an app *object* in a subprocess."""
    if workers < 2:
        raise ValueError(f"workers={workers} must be >= 2: with one worker uvicorn accepts an app object")
    started = time.perf_counter()
    code = _SYLLABUS.format(port=free_port(), workers=workers)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # it started after all: report, the child is already killed
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return AppObjectRun(None, output, time.perf_counter() - started)
    return AppObjectRun(done.returncode, (done.stdout + done.stderr).strip(), time.perf_counter() - started)


def worker_counts(url: str, *, expected: int = 1, polls: int = 60) -> dict[int, int]:
    """``{pid: requests served}`` from ``/metrics.json`` (its worker's ``pid`` and count), asked on
    fresh connections until ``expected`` workers answered (or ``polls`` tries): each connection
    lands on whichever worker accepts it."""
    counts: dict[int, int] = {}
    for _ in range(polls):
        with httpx.Client(timeout=5.0) as client:  # a new connection per poll
            body = client.get(url + "/metrics.json", headers={"connection": "close"}).json()
        counts[int(body["pid"])] = int(body["requests"]["count"])
        if len(counts) >= expected:
            break
    return counts


@dataclass
class WorkersComparison:
    """``levels``: one row per (workers, round, users) with rps, p50/p99, error rate; ``spread``: one
    row per (workers, round, pid) with the requests that worker served and its share; ``cpu``: per
    (workers, round) the cores the server's workers and the generator used during the sweep."""

    levels: pd.DataFrame
    spread: pd.DataFrame
    cpu: pd.DataFrame
    path: str


async def compare_workers(settings: ApiSettings, *, workers: Sequence[int] = (1, 2), users: Sequence[int] = (4, 16, 64),
                          duration: float = 1.0, warmup: float = 0.3, rounds: int = 2, path: str = "/openapi.json",
                          cpu: Sequence[int] | None = None) -> WorkersComparison:
    """Sweep ``users`` against the API with each count of ``workers``, ``rounds`` times (interleaved).

    ``path`` should be CPU-bound in the server: ``/openapi.json`` builds the whole OpenAPI
    document on every request, no database or cache involved. ``cpu`` pins the server.
    """
    if rounds < 1 or not workers or min(workers) < 1:
        raise ValueError(f"rounds={rounds} must be >= 1 and workers={list(workers)} non-empty counts >= 1")
    scenario = Scenario([Endpoint("cpu", path)])
    levels, spread, cpu_rows = [], [], []
    # One server per count, up for every round (idle while the other is measured, so they never
    # compete for the cores), started and stopped side by side: a round costs its sweep, not two starts.
    with start_together(*(ApiServer(settings, workers=count, cpu=cpu) for count in workers)) as servers:
        for round_ in range(rounds):
            for count, server in zip(workers, servers, strict=True):
                before = worker_counts(server.url, expected=count)
                cpu_before = {pid: process_cpu_seconds(pid) for pid in before}
                started = time.perf_counter()
                report = await sweep(server.url, users=users, duration=duration, warmup=warmup, scenario=scenario,
                                     progress=False)
                wall = time.perf_counter() - started
                after = worker_counts(server.url, expected=count)
                server_cpu = sum(process_cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in after)
                client_cpu = sum(r.client_cpu for r in report.results)
                levels.append(report.levels.assign(workers=count, round=round_))
                served = {pid: after[pid] - before.get(pid, 0) for pid in after}
                total = sum(served.values()) or 1
                spread += [{"workers": count, "round": round_, "pid": pid, "requests": n, "share": n / total}
                           for pid, n in sorted(served.items())]
                cpu_rows.append({"workers": count, "round": round_, "server_cores": server_cpu / wall,
                                 "generator_cores": client_cpu / (len(users) * duration),
                                 "seen_workers": len(after)})
    table = pd.concat(levels, ignore_index=True)
    table = table[["workers", "round", "users", "rps", "p50_ms", "p99_ms", "error_rate", "little_ratio"]]
    return WorkersComparison(table, pd.DataFrame(spread), pd.DataFrame(cpu_rows), path)

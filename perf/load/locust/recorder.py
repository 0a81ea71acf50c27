"""Inside Locust's processes: record every request into perf.load HDR histograms, merge on the master.

Imported only by a generated locustfile (it imports Locust, whose gevent monkey-patching
must never reach the CLI's or a notebook's asyncio loop). :func:`install` wires:

* on each **worker**: Locust's ``request`` event records the request into a
  :class:`~perf.load.results.LoadResult` (per endpoint, latency from the request's start,
  or from its due time in the open model); at ``test_stop`` the result travels to the
  master as the custom message ``perf_result`` (before Locust's own ``client_stopped``);
* on the **master**: the run is stopped after ``--perf-duration``, the workers' results are
  awaited (a lost worker is named, never waited on forever), merged with
  :func:`~perf.load.results.merge_results` exactly as ``--processes`` merges, and written
  as JSON to ``--perf-result``; ``--perf-expect-timeout`` bounds the wait for workers.

Percentiles never come from Locust's own (rounded) statistics.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from perf.load.results import LoadResult, merge_results

__all__ = ["MESSAGE", "install"]

#: The custom message a worker sends its result in.
MESSAGE = "perf_result"
log = logging.getLogger("perf.load.locust")


#: The endpoint name for requests still in flight when a worker stopped (their path is not known yet).
UNFINISHED = "(unfinished at end)"


def _error_kind(exc: BaseException | None) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect"
    if isinstance(exc, TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    return type(exc).__name__ if exc is not None else "no response"


class _Worker:
    """A worker's recording state for one run."""

    def __init__(self, environment: Environment, user_class: type[Any]) -> None:
        self.environment = environment
        self.user_class = user_class
        self.result = LoadResult(driver="locust")
        self.t0 = time.time()
        self.cpu0 = time.process_time()
        self.late_after = 0.010
        self.sent = True
        self.samples: list[float] | None = None

    def start(self, **_: Any) -> None:
        opts = self.environment.parsed_options
        self.result = LoadResult(driver="locust", model=getattr(opts, "perf_model", "") or "")
        self.t0, self.cpu0, self.sent = time.time(), time.process_time(), False
        rate, users = getattr(opts, "perf_rate", 0.0) or 0.0, getattr(opts, "perf_users", 0) or 0
        self.late_after = getattr(opts, "perf_late_after", 0.010)
        self.samples = [] if getattr(opts, "perf_samples", "") else None
        self.in_flight: dict[int, tuple[float, float | None]] = {}
        self.tokens = itertools.count()
        if rate > 0 and users > 0:
            _schedule(self.user_class, interval=users / rate)
        open_model = rate > 0 and users > 0

        def context(user: Any) -> dict[str, Any]:
            # Locust calls this as each request starts: the moment it is scheduled, for the accounting
            self.result.scheduled += 1
            token = next(self.tokens)
            due = getattr(user, "_perf_due", None) if open_model else None
            self.in_flight[token] = (time.time(), due)
            return {"perf_token": token, "perf_due": due}

        self.user_class.context = context

    def request(self, *, name: str, response_time: float, start_time: float | None = None,
                response: Any = None, exception: BaseException | None = None,
                context: dict[str, Any] | None = None, **_: Any) -> None:
        seconds = response_time / 1e3
        started = start_time if start_time is not None else time.time() - seconds
        t = started + seconds - self.t0
        self.in_flight.pop((context or {}).get("perf_token", -1), None)
        status = int(getattr(response, "status_code", 0) or 0)
        if status <= 0:
            kind = _error_kind(exception)
            if kind == "timeout":  # a give-up: it enters the histogram at the time it waited
                due = (context or {}).get("perf_due")
                waited = started + seconds - (due if due is not None else started)
                self.result.record_given_up(name, waited, t, dropped=False)
                if self.samples is not None:
                    self.samples.append(waited)
            else:
                self.result.record_error(name, kind, t)
            return
        timing = None
        try:
            timing = response.headers.get("server-timing")
        except AttributeError:
            pass
        due = (context or {}).get("perf_due")
        latency = seconds if due is None else started + seconds - due
        if due is None:
            self.result.record(name, seconds, status, t, server_timing=timing)
        else:
            if started - due > self.late_after:
                self.result.late += 1
            self.result.record(name, latency, status, t, naive=seconds, server_timing=timing)
        if self.samples is not None:
            self.samples.append(latency)

    def stop(self, **_: Any) -> None:
        if self.sent:
            return
        self.sent = True
        now = time.time()
        for started, due in self.in_flight.values():  # still unanswered when the run ended: timed out
            waited = now - (due if due is not None else started)
            self.result.record_given_up(UNFINISHED, waited, now - self.t0, dropped=False)
            if self.samples is not None:
                self.samples.append(waited)
        self.in_flight.clear()
        self.result.duration = now - self.t0
        self.result.client_cpu = time.process_time() - self.cpu0
        worker = self.result.meta["worker"] = getattr(self.environment.runner, "client_id", "")
        if self.samples is not None:  # raw latencies, for checking the merge (tests)
            opts = self.environment.parsed_options
            Path(getattr(opts, "perf_samples", ""), f"{worker}.txt").write_text("\n".join(map(repr, self.samples)))
        self.environment.runner.send_message(MESSAGE, self.result.to_dict())  # type: ignore[union-attr]


def _schedule(user_class: type[Any], *, interval: float) -> None:
    """Give each user an arrival schedule: a request every ``interval`` s, latency from its due time."""

    def wait_time(user: Any) -> float:
        now = time.time()
        due = getattr(user, "_perf_due", None)
        due = (due if due is not None else now) + interval
        user._perf_due = due
        return max(0.0, due - now)

    user_class.wait_time = wait_time


class _Master:
    """The master's side: end the run, collect and merge the workers' results."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.connected: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.started = False

    @property
    def options(self) -> Any:
        return self.environment.parsed_options

    def on_connect(self, client_id: str, **_: Any) -> None:
        if client_id not in self.connected:
            self.connected.append(client_id)

    def on_result(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.results[msg.node_id] = msg.data

    def watch_workers(self) -> None:
        """``--perf-expect-timeout``: give up with a message naming how many workers are missing."""
        expected = self.options.expect_workers
        gevent.sleep(self.options.perf_expect_timeout)
        if self.started:
            return
        missing = expected - len(self.connected)
        self.write({"error": f"expect_workers: {len(self.connected)} of {expected} workers connected within "
                             f"{self.options.perf_expect_timeout:g}s, {missing} missing "
                             f"(connected: {', '.join(self.connected) or 'none'}); start them with "
                             f"`python -m perf load-worker --master HOST:PORT` and check that the master's "
                             f"port is reachable"})
        runner = self.environment.runner
        if runner is not None:
            runner.quit()
        logging.shutdown()
        os._exit(3)

    def start(self, **_: Any) -> None:
        if not self.started:
            self.started = True
            gevent.spawn(self.finish)

    def finish(self) -> None:
        runner = self.environment.runner
        assert isinstance(runner, MasterRunner)
        gevent.sleep(self.options.perf_duration)
        runner.stop()  # Locust sends "stop"; each worker ships its result before "client_stopped"
        deadline = time.monotonic() + self.options.perf_collect_timeout
        while time.monotonic() < deadline:
            pending = [c for c in self.connected if c not in self.results
                       and c in runner.clients and runner.clients[c].state != STATE_MISSING]
            if not pending:
                break
            gevent.sleep(0.1)
        lost = [c for c in self.connected if c not in self.results]
        payload: dict[str, Any] = {"workers": self.connected, "reported": list(self.results), "lost": lost}
        if self.results:
            merged = merge_results(LoadResult.from_dict(d) for d in self.results.values())
            merged.driver = "locust"
            if self.options.perf_rate:
                merged.offered_rate = self.options.perf_rate
            merged.meta.pop("worker", None)
            merged.meta.update(engine="locust", workers=len(self.connected),
                               worker_requests={c: sum(d["status_counts"].values()) + sum(d["errors"].values())
                                                for c, d in self.results.items()})
            if lost:
                merged.meta.update(incomplete=True, lost_workers=lost)
            try:
                merged.check_accounting()
            except RuntimeError as exc:  # reported, never hidden: the run cannot be trusted
                merged.meta.update(incomplete=True, accounting_error=str(exc))
            payload["result"] = merged.to_dict()
        else:
            payload["error"] = f"no worker sent a result (connected: {', '.join(self.connected) or 'none'})"
        self.write(payload)
        self.environment.process_exit_code = 3 if lost or not self.results else 0
        runner.quit()

    def write(self, payload: dict[str, Any]) -> None:
        if self.options.perf_result:
            Path(self.options.perf_result).write_text(json.dumps(payload))


def _add_arguments(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("perf.load", "set by `python -m perf load --engine locust`")
    group.add_argument("--perf-result", default="", help="master: write the merged HDR result here (JSON)")
    group.add_argument("--perf-duration", type=float, default=0.0, help="master: stop the run after SECONDS")
    group.add_argument("--perf-expect-timeout", type=float, default=0.0,
                       help="master: give up when --expect-workers have not connected within SECONDS")
    group.add_argument("--perf-collect-timeout", type=float, default=15.0,
                       help="master: how long to await the workers' results after the stop")
    group.add_argument("--perf-rate", type=float, default=0.0, help="open model: total arrivals per second")
    group.add_argument("--perf-users", type=int, default=0, help="open model: users sharing the rate")
    group.add_argument("--perf-late-after", type=float, default=0.010, help="open model: late threshold (s)")
    group.add_argument("--perf-samples", default="",
                       help="worker: also write every latency the histograms hold (answers and give-ups) "
                            "to DIR/<worker>.txt (to check the merge)")
    group.add_argument("--perf-model", default="", help="the model's label in the result")


def install(events: Any, user_class: type[Any]) -> None:
    """Hook perf.load's recording into Locust's ``events`` for ``user_class`` (call from a locustfile)."""
    events.init_command_line_parser.add_listener(_add_arguments)

    def on_init(environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            worker = _Worker(environment, user_class)
            events.test_start.add_listener(worker.start)
            events.request.add_listener(worker.request)
            events.test_stop.add_listener(worker.stop)
        elif isinstance(runner, MasterRunner):
            master = _Master(environment)
            runner.register_message(MESSAGE, master.on_result)
            events.worker_connect.add_listener(master.on_connect)
            opts = environment.parsed_options
            if getattr(opts, "perf_duration", 0.0):
                events.test_start.add_listener(master.start)
            if getattr(opts, "perf_expect_timeout", 0.0):
                gevent.spawn(master.watch_workers)

    events.init.add_listener(on_init)

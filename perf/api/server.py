"""Run ``python -m perf api`` in a subprocess on a free loopback port (tests, benchmark, notebook 05).

>>> with ApiServer(database_url=..., redis_url=..., mode="all", schema="nb_api", seed=10_000) as server:
...     httpx.get(server.url + "/products/1").headers["x-cache"]

``cpu`` pins the server to those cores (``os.sched_setaffinity``) so a load generator
pinned elsewhere does not steal its CPU. ``close()`` sends SIGTERM (uvicorn shuts down
gracefully: the lifespan drains the task queue) and waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from types import TracebackType
from typing import Sequence

from perf.services.process import free_port, port_open, wait_until


class ApiServer:
    """The product API served by uvicorn in a child process; see the module docstring."""

    def __init__(self, *, database_url: str, redis_url: str, mode: str = "all", schema: str = "api",
                 seed: int = 0, cache_namespace: str | None = None, workers: int = 1,
                 cpu: Sequence[int] | None = None, upload_delay: float = 0.01, pool_max: int = 10,
                 task_workers: int = 4, task_queue_size: int = 1000, server: str = "uvicorn", startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = mode
        self.schema = schema
        self.cpu = list(cpu) if cpu else None
        self._args = [sys.executable, "-m", "perf", "api", "--port", str(self.port), "--workers", str(workers),
                      "--server", server,
                      "--mode", mode, "--schema", schema, "--seed", str(seed),
                      "--cache-namespace", cache_namespace or schema, "--database-url", database_url,
                      "--redis-url", redis_url, "--upload-delay", str(upload_delay), "--pool-max", str(pool_max),
                      "--task-workers", str(task_workers), "--task-queue-size", str(task_queue_size)]
        self._timeout = startup_timeout
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ApiServer":
        """Start the server and wait until it accepts connections (raises with its log if it dies)."""
        self._log = tempfile.NamedTemporaryFile(prefix="perf-api-", suffix=".log")
        self._proc = subprocess.Popen(self._args, stdout=self._log, stderr=subprocess.STDOUT)
        if self.cpu:
            try:
                os.sched_setaffinity(self._proc.pid, self.cpu)
            except (AttributeError, OSError):
                pass  # not on Linux, or cores not available: run unpinned
        up = wait_until(lambda: self._proc.poll() is not None or port_open(self.port), timeout=self._timeout)
        if not up or self._proc.poll() is not None:
            log = self.log()
            self.close()
            raise RuntimeError(f"API server (mode={self.mode!r}) did not start on port {self.port} within "
                               f"{self._timeout}s; its log ends with:\n{log}")
        return self

    @property
    def pid(self) -> int:
        """The server's (uvicorn master's) process id."""
        if self._proc is None:
            raise RuntimeError("the server is not running: call start() or use `with ApiServer(...)`")
        return self._proc.pid

    def log(self) -> str:
        """The last 4000 characters of the server's output."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as fh:
            return fh.read().decode(errors="replace")[-4000:]

    def close(self, *, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); returns the exit code."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            with proc:
                proc.terminate()
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
        return code

    def cleanup(self) -> None:
        """Release the log file (after :meth:`close`)."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        self.cleanup()

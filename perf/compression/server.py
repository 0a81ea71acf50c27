"""Run the compression demo app in a uvicorn subprocess, and read its CPU time.

A separate process keeps the server's CPU apart from the client's, so "server CPU per
response" is the server's own CPU time (:meth:`DemoServer.cpu_seconds`) divided by requests.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import psutil

from perf.compression.codecs import PREFERENCE
from perf.services.process import free_port, port_open, wait_until


class DemoServer:
    """``with DemoServer(mode="asgi", levels={"br": 4}) as server: httpx.get(server.url + "/products")``.

    ``mode`` is ``none``, ``naive`` or ``asgi`` (see :mod:`perf.compression.demo_app`).
    """

    def __init__(self, *, mode: str = "asgi", encodings: Sequence[str] = PREFERENCE,
                 levels: Mapping[str, int] | None = None, minimum_size: int = 1024,
                 startup_timeout: float = 20.0) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [sys.executable, "-m", "perf.compression.demo_app", "--mode", mode,
                      "--port", str(self.port), "--encodings", ",".join(encodings),
                      "--levels", ",".join(f"{k}={v}" for k, v in (levels or {}).items()),
                      "--minimum-size", str(minimum_size)]
        self._timeout = startup_timeout
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None

    def start(self) -> DemoServer:
        """Start the server and wait until it accepts connections."""
        if self._proc is not None:
            raise RuntimeError(f"the demo server on port {self.port} is already running: call close() first")
        self._log = tempfile.NamedTemporaryFile(prefix="perf-compression-", suffix=".log")
        self._proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=self._log)
        self._ps = psutil.Process(self._proc.pid)
        up = wait_until(lambda: self._proc.poll() is not None or port_open(self.port), timeout=self._timeout)
        if not up or self._proc.poll() is not None:
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"demo server mode={self.mode!r} did not start on port {self.port} "
                               f"within {self._timeout}s; its log ends with:\n{log}")
        return self

    @property
    def pid(self) -> int:
        """The server process id."""
        if self._proc is None:
            raise RuntimeError("the server is not running: call start() or use `with DemoServer(...)`")
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (all its threads).

        On Linux this sums ``/proc/PID/task/*/schedstat`` (nanosecond resolution); elsewhere
        it falls back to psutil's user + system time (10 ms clock ticks on many systems,
        too coarse for one fast response: measure batches).
        """
        if self._ps is None or self._proc is None:
            raise RuntimeError("the server is not running: call start() or use `with DemoServer(...)`")
        total_ns = 0
        try:
            for task in Path(f"/proc/{self._proc.pid}/task").iterdir():
                total_ns += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            times = self._ps.cpu_times()
            return float(times.user + times.system)
        return total_ns / 1e9

    def close(self, *, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``) and release its files."""
        proc, self._proc, self._ps = self._proc, None, None
        if proc is not None:
            with proc:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

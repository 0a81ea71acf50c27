"""Run an HTTP server (uvicorn, granian, ...) in a child process on a loopback port.

A separate process keeps the server's CPU apart from the load generator's, so a
benchmark can pin each to its own core and read the server's own CPU time.
The technique harnesses (the compression demo app, the product API, the load
test server) build their command line and hand it to :class:`ServerProcess`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Self, TypeVar

from perf.services.cpu import pin_process, process_cpu_seconds, split_cores, usable_cores
from perf.services.process import free_port, port_open, wait_until

# split_cores and usable_cores are not used here: importable from here as they were (notebooks do);
# their home is perf.services.cpu.
__all__ = ["ServerProcess", "pin_process", "process_cpu_seconds", "split_cores", "start_together", "usable_cores"]


class ServerProcess:
    """``with ServerProcess(lambda port: [...argv...], name="api") as server: server.url``.

    ``command(port)`` returns the argv that serves on ``127.0.0.1:port``; the port
    is free when chosen. ``start()`` waits until the port accepts connections and
    raises with the tail of the server's log when it dies or times out; ``close()``
    sends SIGTERM (a graceful shutdown: lifespans run) and SIGKILL after a timeout.
    """

    def __init__(self, command: Sequence[str] | None = None, *, port: int | None = None, name: str = "server",
                 cpu: Iterable[int] | None = None, startup_timeout: float = 30.0,
                 stop_timeout: float = 10.0, stop_signal: int = signal.SIGTERM) -> None:
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.cpu = set(cpu) if cpu else None
        self.command = list(command) if command is not None else []
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        self.env: dict[str, str] = {}  # added to the child's environment (e.g. a secret kept off argv)
        self.returncode: int | None = None
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_sent = False

    def start(self) -> Self:
        """Start the child and wait until its port accepts connections."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the child without waiting for it: :func:`start_together` launches several, then waits."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} on port {self.port} is already running: call close() first")
        if not self.command:
            raise ValueError("command is empty: pass the server's argv")
        self._log = tempfile.NamedTemporaryFile(prefix=f"perf-{self.name}-", suffix=".log")
        env = {**os.environ, **self.env} if self.env else None
        self._stop_sent = False
        self._proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if self.cpu:
            pin_process(self._proc.pid, self.cpu)

    def wait_ready(self) -> Self:
        """Wait until the launched child accepts connections; when it dies or times out, stop it and
        raise with the tail of its log."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"{self.name} was not launched: call launch() or start() first")
        up = wait_until(lambda: proc.poll() is not None or port_open(self.port), timeout=self.startup_timeout)
        if not up or proc.poll() is not None:
            log = self.log()
            self.close()
            self._release_log()
            raise RuntimeError(f"{self.name} did not start on port {self.port} within {self.startup_timeout}s; "
                               f"its log ends with:\n{log}")
        return self

    @property
    def running(self) -> bool:
        """True while the child process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The server's process id (the master's, for multi-worker servers)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running: call start() or use `with`")
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (all its threads; not its worker children)."""
        return process_cpu_seconds(self.pid)

    def log(self, limit: int = 4000) -> str:
        """The last ``limit`` characters of the server's stdout and stderr."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as fh:
            return fh.read().decode(errors="replace")[-limit:]

    def close(self, *, timeout: float | None = None) -> int | None:
        """Send ``stop_signal`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL; returns the exit code.

        The log stays readable until the ``with`` block ends.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            with proc:
                if not self._stop_sent:
                    proc.send_signal(self.stop_signal)
                try:
                    self.returncode = proc.wait(self.stop_timeout if timeout is None else timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    self.returncode = proc.wait()
        return self.returncode

    def stop_nowait(self) -> None:
        """Send ``stop_signal`` now and return; :meth:`close` then only waits. Sent once: a second
        SIGTERM or SIGINT makes uvicorn skip its graceful shutdown."""
        if self._proc is not None and not self._stop_sent and self._proc.poll() is None:
            self._proc.send_signal(self.stop_signal)
            self._stop_sent = True

    def _release_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        self._release_log()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self._proc else "stopped"
        return f"<{type(self).__name__} {self.name} {self.url} {state}>"


ServerT = TypeVar("ServerT", bound=ServerProcess)


@contextmanager
def start_together(*servers: ServerT) -> Iterator[tuple[ServerT, ...]]:
    """``with start_together(a, b, c):`` start several servers side by side and stop them side by side.

    One after the other, each start waits for the child's imports and connections and each
    stop for its graceful shutdown (about 2 s and 1 s for the API here); side by side those
    waits overlap. When one fails to start, the others are stopped and its error is raised.
    """
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop_nowait()
        for server in servers:
            server.__exit__(None, None, None)  # each class's own cleanup (logs, a profile folder)

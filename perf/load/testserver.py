"""A bare ASGI app with controlled delays and stalls, served by uvicorn in a subprocess.

The load tests and the benchmark need a server whose latency is known in advance:

* ``GET /`` answers ``ok`` at once (the trivial endpoint for calibration);
* ``GET /delay/<ms>`` awaits ``ms`` milliseconds (other requests proceed);
* ``GET /stall/<ms>`` blocks the event loop for ``ms`` milliseconds (everything waits);
* ``GET /status/<code>`` answers with that status;
* ``GET /metrics`` answers Prometheus text (``requests_total``).

``--stall-after N --stall-ms M`` makes the N-th request block the loop for M ms, once:
the coordinated-omission experiment. Every answer carries ``Server-Timing``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Any, Awaitable, Callable

from perf.services.process import free_port, port_open, wait_until

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class DelayApp:
    """The ASGI app described in the module docstring."""

    def __init__(self, *, stall_after: int = 0, stall_ms: float = 0.0) -> None:
        self.stall_after = stall_after
        self.stall_ms = stall_ms
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        started = time.perf_counter()
        self.requests += 1
        if scope["method"] in ("POST", "PUT", "PATCH"):
            while (await receive()).get("more_body"):
                pass
        status, body, db_ms = 200, b"ok", 0.0
        parts = scope["path"].strip("/").split("/")
        try:
            if parts[0] == "delay":
                db_ms = float(parts[1])
                await asyncio.sleep(db_ms / 1e3)
            elif parts[0] == "stall":
                time.sleep(float(parts[1]) / 1e3)
            elif parts[0] == "status":
                status = int(parts[1])
            elif parts[0] == "metrics":
                body = f"requests_total {self.requests}\n".encode()
            elif parts[0]:
                status, body = 404, b"not found"
        except (IndexError, ValueError):
            status, body = 400, b"bad number in path"
        if self.stall_after and self.requests == self.stall_after:
            time.sleep(self.stall_ms / 1e3)
        app_ms = (time.perf_counter() - started) * 1e3 - db_ms
        timing = f"db;dur={db_ms:.3f}, app;dur={max(app_ms, 0.0):.3f}".encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), (b"server-timing", timing),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class TestServer:
    """``with TestServer() as server: ... server.url ...``: the delay app under uvicorn.

    ``cpu`` pins the server process to those cores (``os.sched_setaffinity``) so a load
    generator pinned elsewhere does not share them; ``loop``/``http`` pick uvicorn's
    implementations (``auto`` is uvloop + httptools when installed).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, stall_after: int = 0, stall_ms: float = 0.0, loop: str = "auto",
                 http: str = "auto", cpu: set[int] | None = None, startup_timeout: float = 20.0) -> None:
        if loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError(f"loop must be 'auto', 'asyncio' or 'uvloop', got {loop!r}")
        if http not in ("auto", "h11", "httptools"):
            raise ValueError(f"http must be 'auto', 'h11' or 'httptools', got {http!r}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [sys.executable, "-m", "perf.load.testserver", "--port", str(self.port),
                      "--stall-after", str(stall_after), "--stall-ms", str(stall_ms),
                      "--loop", loop, "--http", http]
        self._cpu = cpu
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self._proc is None:
            raise RuntimeError("the server is not running: call start() or use `with TestServer()`")
        return self._proc.pid

    def start(self) -> "TestServer":
        """Start uvicorn and wait until it accepts connections."""
        self._log = tempfile.TemporaryFile(prefix="perf-load-server-")
        self._proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=self._log)
        if self._cpu:
            pin_process(self._proc.pid, self._cpu)
        up = wait_until(lambda: self._proc.poll() is not None or port_open(self.port), timeout=self._timeout)
        if not up or self._proc.poll() is not None:
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"test server did not start on port {self.port}; its log ends with:\n{log}")
        return self

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``)."""
        proc, self._proc = self._proc, None
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

    def __enter__(self) -> "TestServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def pin_process(pid: int, cpus: set[int]) -> bool:
    """Pin ``pid`` to ``cpus`` when the platform allows it; False when it could not."""
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    wanted = set(cpus) & set(available)
    if not wanted:
        return False
    try:
        os.sched_setaffinity(pid, wanted)
    except OSError:
        return False
    return True


def split_cores() -> tuple[set[int], set[int]]:
    """(server cores, generator cores): halves of the usable cores; both all of them on one core."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    if len(cores) < 2:
        return set(cores), set(cores)
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def main(argv: list[str] | None = None) -> int:
    """``python -m perf.load.testserver --port P``: serve :class:`DelayApp` on 127.0.0.1."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m perf.load.testserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stall-after", type=int, default=0)
    parser.add_argument("--stall-ms", type=float, default=0.0)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    args = parser.parse_args(argv)
    app = DelayApp(stall_after=args.stall_after, stall_ms=args.stall_ms)
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop=args.loop, http=args.http,
                log_level="warning", access_log=False, lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

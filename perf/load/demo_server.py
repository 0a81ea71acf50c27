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
import sys
import time

from perf.asgi import Receive, Scope, Send
from perf.services.server_process import ServerProcess

__all__ = ["DelayApp", "TestServer", "main"]



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


class TestServer(ServerProcess):
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
        super().__init__(name="load-test-server", cpu=cpu, startup_timeout=startup_timeout, stop_timeout=5.0)
        self.command = [sys.executable, "-m", "perf.load.demo_server", "--port", str(self.port),
                        "--stall-after", str(stall_after), "--stall-ms", str(stall_ms),
                        "--loop", loop, "--http", http]


def main(argv: list[str] | None = None) -> int:
    """``python -m perf.load.demo_server --port P``: serve :class:`DelayApp` on 127.0.0.1."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m perf.load.demo_server")
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

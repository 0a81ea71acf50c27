"""Run the compression demo app in a uvicorn subprocess, and read its CPU time.

A separate process keeps the server's CPU apart from the client's, so "server CPU per
response" is the server's own CPU time (:meth:`DemoServer.cpu_seconds`) divided by requests.
The process handling is :class:`perf.services.server_process.ServerProcess`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from perf.compression.codecs import PREFERENCE
from perf.services.server_process import ServerProcess


class DemoServer(ServerProcess):
    """``with DemoServer(mode="asgi", levels={"br": 4}) as server: httpx.get(server.url + "/products")``.

    ``mode`` is ``none``, ``naive`` or ``asgi`` (see :mod:`perf.compression.demo_app`);
    :meth:`cpu_seconds` is the server's own CPU time, so CPU per response is its
    delta divided by the requests sent.
    """

    def __init__(self, *, mode: str = "asgi", encodings: Sequence[str] = PREFERENCE,
                 levels: Mapping[str, int] | None = None, minimum_size: int = 1024,
                 startup_timeout: float = 20.0) -> None:
        super().__init__(name=f"compression-demo-{mode}", startup_timeout=startup_timeout)
        self.mode = mode
        self.command = [sys.executable, "-m", "perf.compression.demo_app", "--mode", mode,
                        "--port", str(self.port), "--encodings", ",".join(encodings),
                        "--levels", ",".join(f"{k}={v}" for k, v in (levels or {}).items()),
                        "--minimum-size", str(minimum_size)]

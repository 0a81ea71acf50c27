"""Run ``python -m perf api`` in a subprocess on a free loopback port (tests, benchmark, notebooks 05-07).

>>> settings = ApiSettings(database_url=..., redis_url=..., mode="all", schema="nb_api", products=10_000)
>>> with ApiServer(settings) as server:
...     httpx.get(server.url + "/products/1").headers["x-cache"]
...     httpx.patch(server.url + "/products/1", json={"price": "9.90"}, headers=server.auth_headers)

The child gets every :class:`~perf.api.settings.ApiSettings` field as its flag
(:func:`perf.api.cli.settings_argv`), so the server runs exactly these settings. Its
write token is ``settings.api_token`` (a new random one per ``ApiSettings`` unless you
pass one): :attr:`ApiServer.token` and :attr:`ApiServer.auth_headers` hand it to
clients and load scenarios. ``cpu`` pins the server to those cores
(``os.sched_setaffinity``) so a load generator pinned elsewhere does not steal its CPU.
``close()`` sends SIGTERM (a graceful shutdown: the lifespan drains the task queue) and waits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Self

from perf.api.cli import SERVERS, TOKEN_ENV, settings_argv
from perf.api.settings import ApiSettings
from perf.services.server_process import ServerProcess


class ApiServer(ServerProcess):
    """The product API with ``settings`` served by uvicorn (or granian) in a child process."""

    def __init__(self, settings: ApiSettings, *, workers: int = 1, cpu: Sequence[int] | None = None,
                 server: str = "uvicorn", startup_timeout: float = 60.0) -> None:
        if server not in SERVERS:
            raise ValueError(f"server={server!r} must be one of {SERVERS}")
        if workers < 1:
            raise ValueError(f"workers={workers!r} must be >= 1")
        super().__init__(name=f"api-{settings.schema}", cpu=cpu, startup_timeout=startup_timeout, stop_timeout=30.0)
        self.settings = settings
        self.command = [sys.executable, "-m", "perf", "api", "--port", str(self.port), "--workers", str(workers),
                        "--server", server, *settings_argv(settings, secrets=False)]
        self.env = {TOKEN_ENV: settings.api_token}  # not on the command line: `ps` shows that to every user

    @property
    def mode(self) -> str:
        """The server's mode as text (``"all"``, ``"baseline,+pool"``...)."""
        return str(self.settings.mode)

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding its tables."""
        return self.settings.schema

    @property
    def token(self) -> str:
        """The bearer token its write routes require."""
        return self.settings.api_token

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"authorization": "Bearer <token>"}`` for writes."""
        return {"authorization": f"Bearer {self.token}"}

    def wait_ready(self) -> Self:
        """Wait until the launched server answers HTTP (``GET /health``, any status).

        The port opens as soon as the server's master binds it; waiting for an answer also
        covers the workers' startup (pool, cache, seeding), so the first request of a
        test or a load run never races it.
        """
        super().wait_ready()
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                httpx.get(self.url + "/health", timeout=2.0)
                return self
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or not self.running:
                    log = self.log()
                    self.close()
                    raise RuntimeError(f"{self.name} accepts connections on port {self.port} but never answered "
                                       f"HTTP ({exc!r}); its log ends with:\n{log}") from exc
                time.sleep(0.1)

    def cleanup(self) -> None:
        """Release the log file (after :meth:`close`, once the log has been read)."""
        self._release_log()

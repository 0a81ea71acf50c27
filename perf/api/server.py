"""Run ``python -m perf api`` in a subprocess on a free loopback port (tests, benchmark, notebook 05).

>>> with ApiServer(database_url=..., redis_url=..., mode="all", schema="nb_api", products=10_000) as server:
...     httpx.get(server.url + "/products/1").headers["x-cache"]

``cpu`` pins the server to those cores (``os.sched_setaffinity``) so a load generator
pinned elsewhere does not steal its CPU. ``close()`` sends SIGTERM (uvicorn shuts down
gracefully: the lifespan drains the task queue) and waits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from perf.services.server_process import ServerProcess


class ApiServer(ServerProcess):
    """The product API served by uvicorn (or granian) in a child process; see the module docstring."""

    def __init__(self, *, database_url: str, redis_url: str, mode: str = "all", schema: str = "api",
                 products: int = 0, cache_namespace: str | None = None, workers: int = 1,
                 cpu: Sequence[int] | None = None, upload_delay: float = 0.01, pool_max: int = 10,
                 task_workers: int = 4, task_queue_size: int = 1000, server: str = "uvicorn",
                 startup_timeout: float = 60.0, task_lease: float = 10.0, task_retention: float = 3600.0,
                 task_max_attempts: int = 3, task_drain: float = 3.0, shutdown_grace: float = 1.0) -> None:
        super().__init__(name=f"api-{schema}", cpu=cpu, startup_timeout=startup_timeout, stop_timeout=30.0)
        self.mode = mode
        self.schema = schema
        self.command = [
            sys.executable, "-m", "perf", "api", "--port", str(self.port), "--workers", str(workers),
            "--server", server, "--mode", mode, "--schema", schema, "--products", str(products),
            "--cache-namespace", cache_namespace or schema, "--database-url", database_url,
            "--redis-url", redis_url, "--upload-delay", str(upload_delay), "--pool-max", str(pool_max),
            "--task-workers", str(task_workers), "--task-queue-size", str(task_queue_size),
            "--task-lease", str(task_lease), "--task-retention", str(task_retention),
            "--task-max-attempts", str(task_max_attempts), "--task-drain", str(task_drain),
            "--shutdown-grace", str(shutdown_grace),
        ]

    def start(self) -> ApiServer:
        """Start the server and wait until it answers HTTP (``GET /health``, any status).

        The port opens as soon as uvicorn's master binds it; waiting for an answer also
        covers the workers' startup (pool, cache, seeding), so the first request of a
        test or a load run never races it.
        """
        super().start()
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

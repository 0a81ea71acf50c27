"""What every embedded server shares: a directory, a loopback port kept across restarts, a lifecycle."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from perf.services.binaries import ServiceUnavailable
from perf.services.process import free_port, port_open


class EmbeddedServer:
    """Base of :class:`EmbeddedPostgres` and :class:`EmbeddedRedis`.

    Subclasses implement ``start()``, ``stop()``, ``pid``, ``url`` and ``version()``;
    this class validates the port, picks a free one on first start and keeps it, and
    provides ``restart``, ``destroy`` and the (sync) context manager.
    """

    #: Product name used in messages ("PostgreSQL", "Redis").
    product = "server"

    def __init__(self, data_dir: Path | str, *, port: int | None = None) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port!r}")
        self.base_dir = Path(data_dir).resolve()
        self.port = port

    @property
    def pid(self) -> int | None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def start(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _claim_port(self) -> int:
        """The port to listen on: the configured/previous one (must be free) or a new free one."""
        if self.port is None:
            self.port = free_port()
        elif port_open(self.port):
            raise ServiceUnavailable(
                f"Port {self.port} is already in use, so {self.product} cannot listen on it. Stop whatever "
                f"listens there (`ss -ltnp | grep {self.port}`) or leave the port unset to pick a free one."
            )
        return self.port

    def _refuse_if_running(self) -> None:
        if self.pid is not None:
            raise ServiceUnavailable(
                f"A {self.product} server (pid {self.pid}) already runs from {self.base_dir}. "
                "Stop it with `python -m perf services down` (or .stop()), or remove the directory if it is stale."
            )

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop, stay down for ``down_for`` seconds, and start again on the same port."""
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.pid else "stopped"
        return f"<{type(self).__name__} {self.base_dir} port={self.port} {state}>"

"""The interface every load driver offers: keep-alive connections that send one request at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit


class DriverUnavailable(RuntimeError):
    """The driver cannot run here (e.g. ``wrk`` is not on PATH); the message says how to fix it."""


class RequestFailed(Exception):
    """A request got no HTTP response; ``kind`` is ``connect``, ``reset``, ``protocol`` or ``timeout``."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(slots=True)
class Response:
    """What a load run keeps of a response: its status, ``Server-Timing`` header and body size."""

    status: int
    server_timing: str | None
    nbytes: int
    x_cache: str | None = None


class Connection(ABC):
    """One keep-alive connection; ``request`` is never called concurrently on it."""

    @abstractmethod
    async def request(self, method: str, target: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        """Send one request (``target`` is the path plus query) and read the whole response."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection."""


class Driver(ABC):
    """Opens connections to one ``base_url`` (``http://127.0.0.1:PORT``); ``async with`` closes them."""

    name = "driver"

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like http://127.0.0.1:8000, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")

    @abstractmethod
    async def connect(self) -> Connection:
        """A new connection (opened lazily or at once, driver's choice)."""

    async def close(self) -> None:  # noqa: B027 - an optional hook: most drivers share nothing
        """Release anything shared by the connections."""

    async def __aenter__(self) -> Driver:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

"""The httpx driver: HTTPS, HTTP/2 and a full-featured client, at a fraction of the built-in's rate.

Each connection is its own ``httpx.AsyncClient`` holding one keep-alive connection, as
the :class:`~perf.load.drivers.base.Connection` contract and the built-in driver have it.
One client shared by every user measured httpcore's pool instead: with 32 users
requesting at once it ran ~4x fewer requests per second than 32 clients (measured here,
httpx 0.28.1 / httpcore 1.0.9), a cost no server under test causes.
"""

from __future__ import annotations

import ssl

import certifi
import httpx

from perf.load.drivers.base import Connection, Driver, RequestFailed, Response


class HttpxConnection(Connection):
    """One keep-alive connection: an ``httpx.AsyncClient`` of its own, limited to one connection."""

    def __init__(self, base_url: str, *, http2: bool, tls: ssl.SSLContext) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, http2=http2, timeout=None, verify=tls)

    async def request(self, method: str, target: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        try:
            response = await self._client.request(method, target, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RequestFailed("timeout", str(exc)) from exc
        except httpx.ConnectError as exc:
            raise RequestFailed("connect", str(exc)) from exc
        except httpx.RemoteProtocolError as exc:
            raise RequestFailed("protocol", str(exc)) from exc
        except httpx.TransportError as exc:
            raise RequestFailed("reset", str(exc)) from exc
        return Response(response.status_code, response.headers.get("server-timing"),
                        response.num_bytes_downloaded, response.headers.get("x-cache"))  # on the wire

    async def close(self) -> None:
        await self._client.aclose()


class HttpxDriver(Driver):
    """httpx with one ``AsyncClient`` (one keep-alive connection) per connection (``http2`` needs ``h2``)."""

    name = "httpx"

    def __init__(self, base_url: str, *, http2: bool = False) -> None:
        super().__init__(base_url)
        self.http2 = http2
        # One TLS context for every client: each AsyncClient would otherwise load the CA
        # bundle again (~40 ms here), inside the measured run.
        self._tls = ssl.create_default_context(cafile=certifi.where())

    async def connect(self) -> HttpxConnection:
        return HttpxConnection(self.base_url, http2=self.http2, tls=self._tls)

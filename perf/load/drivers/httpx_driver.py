"""The httpx driver: HTTPS, HTTP/2 and a full-featured client, at a fraction of the built-in's rate."""

from __future__ import annotations

import httpx

from perf.load.drivers.base import Connection, Driver, RequestFailed, Response


class HttpxConnection(Connection):
    """A view on the driver's shared client (httpx pools connections itself)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

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
                        len(response.content), response.headers.get("x-cache"))

    async def close(self) -> None:
        """Nothing to do: the driver owns the client."""


class HttpxDriver(Driver):
    """``httpx.AsyncClient`` with up to ``max_connections`` keep-alive connections (``http2`` needs ``h2``)."""

    name = "httpx"

    def __init__(self, base_url: str, *, max_connections: int = 100, http2: bool = False) -> None:
        super().__init__(base_url)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(base_url=self.base_url, limits=limits, http2=http2, timeout=None)

    async def connect(self) -> HttpxConnection:
        return HttpxConnection(self._client)

    async def close(self) -> None:
        await self._client.aclose()

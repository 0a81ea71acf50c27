"""A TCP relay to PostgreSQL that loses the answer to one COMMIT: the write commits, its client sees a dead connection.

This is the "commit outcome unknown" case made deterministic with a real server: the
``COMMIT`` reaches PostgreSQL, the relay waits for PostgreSQL's answer (so the commit has
happened), then drops that answer and aborts both sockets. asyncpg sees what it would see
if the network or the server died at that moment (``ConnectionDoesNotExistError``).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

_COMMIT = b"COMMIT;\x00"  # asyncpg's Transaction sends COMMIT as a simple query


class CommitCutter:
    """``async with CommitCutter(database_url, after=b"INSERT INTO t") as relay``: connect to ``relay.url``.

    The first ``COMMIT`` sent on a connection that earlier sent bytes containing ``after``
    has its answer dropped and the connection aborted (once per :meth:`arm`; armed at start).
    ``relay.cut`` counts the answers dropped.
    """

    def __init__(self, database_url: str, *, after: bytes) -> None:
        parts = urlsplit(database_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self._after = after
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.armed = True
        self.cut = 0
        self.url = ""

    def arm(self) -> None:
        """Drop the answer of the next matching COMMIT too."""
        self.armed = True

    async def __aenter__(self) -> CommitCutter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        userinfo = self._parts.netloc.rpartition("@")[0]
        self.url = urlunsplit(self._parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}" if userinfo
                                                   else f"127.0.0.1:{port}"))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(*self._target)
            await self._relay(client_in, client_out, server_in, server_out)
        finally:
            self._handlers.discard(task)

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter,
                     server_in: asyncio.StreamReader, server_out: asyncio.StreamWriter) -> None:
        seen_after = False
        committing = asyncio.Event()

        async def up() -> None:
            nonlocal seen_after
            while data := await client_in.read(65536):
                seen_after = seen_after or self._after in data
                if seen_after and self.armed and _COMMIT in data:
                    self.armed = False
                    committing.set()
                server_out.write(data)
                await server_out.drain()

        async def down() -> None:
            while data := await server_in.read(65536):
                if committing.is_set():  # PostgreSQL answered the COMMIT: it committed. Lose the answer.
                    self.cut += 1
                    client_out.transport.abort()
                    server_out.transport.abort()
                    return
                client_out.write(data)
                await client_out.drain()

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_out, server_out):
                with contextlib.suppress(Exception):
                    writer.transport.abort()

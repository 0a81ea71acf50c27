"""Tell from a statement's text whether it can change session state, and an asyncpg
connection that remembers it, so a pool resets only the connections that need it.

Session state is what outlives a transaction: parameters set without ``LOCAL``
(``SET search_path``, ``set_config(..., false)``), session advisory locks, ``LISTEN``,
cursors ``WITH HOLD``, prepared statements, temporary tables. A statement that merely
*mentions* such a word (``UPDATE t SET x = 1``) is told apart by position: ``SET`` and
friends only count at the start of a statement. False positives cost one reset; a
change made inside a server function is invisible here (use the pool's ``reset="always"``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import asyncpg

_SESSION_SQL = re.compile(
    r"""(?:^|;)\s*(?:SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)|RESET\b|LISTEN\b|DECLARE\b|PREPARE\b|DISCARD\b
        |CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP)
      | \bset_config\s*\(
      | \bpg_(?:try_)?advisory_lock""",
    re.IGNORECASE | re.VERBOSE,
)
@functools.lru_cache(maxsize=4096)  # the same query texts repeat: decide each once
def changes_session(query: str) -> bool:
    """True when ``query`` can change session state (see the module docstring).

    >>> changes_session("SET statement_timeout = '1s'"), changes_session("UPDATE t SET x = 1")
    (True, False)
    >>> changes_session("SELECT pg_advisory_lock(1)"), changes_session("SET LOCAL work_mem = '8MB'")
    (True, False)
    """
    return _SESSION_SQL.search(query) is not None


class SessionTrackingConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection whose ``session_changed`` turns True once a statement that
    can change session state is sent (through any query method); the pool clears it on reset.

    Each public method that takes SQL text (:data:`QUERY_METHODS`) looks at it first;
    ``tests/test_pool_reset.py`` fails if asyncpg grows one this class does not watch.
    """

    __slots__ = ("session_changed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_changed = False

    def _note(self, query: str) -> None:
        if not self.session_changed and changes_session(query):
            self.session_changed = True

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """:meth:`asyncpg.Connection.execute`, noting a session change."""
        self._note(query)
        result: str = await super().execute(query, *args, timeout=timeout)
        return result

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> None:
        """:meth:`asyncpg.Connection.executemany`, noting a session change."""
        self._note(command)
        await super().executemany(command, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        """:meth:`asyncpg.Connection.fetch`, noting a session change."""
        self._note(query)
        rows: list[Any] = await super().fetch(query, *args, **kwargs)
        return rows

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`asyncpg.Connection.fetchval`, noting a session change."""
        self._note(query)
        return await super().fetchval(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`asyncpg.Connection.fetchrow`, noting a session change."""
        self._note(query)
        return await super().fetchrow(query, *args, **kwargs)

    async def fetchmany(self, query: str, args: Any, **kwargs: Any) -> list[Any]:
        """:meth:`asyncpg.Connection.fetchmany`, noting a session change."""
        self._note(query)
        rows: list[Any] = await super().fetchmany(query, args, **kwargs)
        return rows

    async def prepare(self, query: str, **kwargs: Any) -> Any:
        """:meth:`asyncpg.Connection.prepare`, noting a session change."""
        self._note(query)
        return await super().prepare(query, **kwargs)

    def cursor(self, query: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`asyncpg.Connection.cursor`, noting a session change."""
        self._note(query)
        return super().cursor(query, *args, **kwargs)

    async def copy_from_query(self, query: str, *args: Any, **kwargs: Any) -> str:
        """:meth:`asyncpg.Connection.copy_from_query`, noting a session change."""
        self._note(query)
        result: str = await super().copy_from_query(query, *args, **kwargs)
        return result


#: asyncpg's public ``Connection`` methods that take SQL text, each watched above.
QUERY_METHODS = ("execute", "executemany", "fetch", "fetchval", "fetchrow", "fetchmany", "prepare", "cursor",
                 "copy_from_query")

"""A write whose connection broke: did it commit? Ask PostgreSQL, then answer or run it again once.

A connection can break at any point of a write's transaction (a server restart, a cut
network). Before ``COMMIT`` is sent nothing happened, and the write can simply run again.
After ``COMMIT`` was sent and before its answer arrived the write *may* have committed: a
503 may then report a committed write as failed, and running it again may apply it twice.
The textbook resolution of this "commit outcome unknown" problem (PostgreSQL 13+):

1. inside its transaction, before ``COMMIT``, the write learns its transaction id
   (``pg_current_xact_id()``): from one of its own statements when it selects it there
   (``xid_of``: no extra round trip), else with one more statement, :data:`XID_SQL`;
2. when the connection breaks, a fresh connection asks ``pg_xact_status(xid)``
   (:func:`commit_status`): ``committed``: the write happened, and what it returned inside
   its transaction is what committed; ``aborted``: it did not, run it again;
3. broke before the transaction id was learned: ``COMMIT`` was never sent; run it again.

:func:`run_write` does all of this around any ``work(conn)``, once: a second break is
raised to the caller (the API answers 503). The durable queue's ``submit`` and the API's
:meth:`~perf.api.database.Database.write` both use it, so there is one copy of the rule.

>>> async def rename(conn):
...     return await conn.fetchval("UPDATE products SET name = $1 WHERE id = 7 RETURNING id", "x")
>>> await run_write(pool.acquire, rename)   # runs in a transaction; 7 even across a restart
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

import asyncpg

from perf.pool.errors import PoolError
from perf.pool.unavailable import is_unavailable

T = TypeVar("T")

#: The statement that learns a write's transaction id (and assigns one if the write has not written yet).
XID_SQL = "SELECT pg_current_xact_id()"

#: What :func:`commit_status` can answer.
CommitStatus = Literal["committed", "aborted"]


class CommitOutcomeUnknown(TimeoutError):
    """The transaction still ran ``wait`` seconds after its client lost it: whether it commits is not known.

    A :class:`TimeoutError` (so :func:`~perf.pool.unavailable.is_unavailable` is True and the
    API answers 503): the server did not tell in time, as when it does not answer at all.
    """


async def commit_status(conn: asyncpg.Connection, xid: int, *, wait: float = 5.0) -> CommitStatus:
    """Whether transaction ``xid`` (from :data:`XID_SQL`) committed, asked on ``conn`` (another connection).

    ``in progress`` means its backend still runs: its client is gone (a cut network, not a
    restart, which ends every transaction) but the server has not noticed yet. It is ended
    (``pg_terminate_backend``, waiting up to ``wait`` seconds): a transaction whose client is
    gone can never be answered, and once its backend exits the status is final (aborted, or
    committed if ``COMMIT`` had been read). :class:`CommitOutcomeUnknown` if it still runs.

    >>> await commit_status(conn, xid)
    'committed'
    """
    status = await _status(conn, xid)
    if status == "in progress":
        # backend_xid is the 32-bit xid: the live transaction with these low bits is this one
        await conn.execute("SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity "
                           "WHERE backend_xid = $1::xid8::xid", xid, max(1, round(wait * 1000)))
        status = await _status(conn, xid)
        if status == "in progress":
            raise CommitOutcomeUnknown(f"transaction {xid} still runs {wait}s after its connection was lost; "
                                       "whether it commits is unknown")
    # NULL: too old for the commit log to say. A transaction from a moment ago cannot be (the log
    # is kept back to the oldest unfrozen transaction): treated as not committed.
    return "committed" if status == "committed" else "aborted"


async def _status(conn: asyncpg.Connection, xid: int) -> str | None:
    try:
        status: str | None = await conn.fetchval("SELECT pg_xact_status($1::xid8)", xid)
    except asyncpg.InvalidParameterValueError:
        # "transaction ID is in the future": this server never assigned it (a failover to a
        # replica the transaction never reached), so it did not commit here
        return "aborted"
    return status


@dataclass(slots=True)
class _Attempt(Generic[T]):
    """How far one run of a write got before its connection broke."""

    acquired: bool = False  # a connection was lent: something may have been sent
    xid: int | None = None  # learned before COMMIT: its status can be asked
    finished: bool = False  # work returned and xid is known: COMMIT was (about to be) sent
    result: T | None = None


async def _run(conn: asyncpg.Connection, work: Callable[[asyncpg.Connection], Awaitable[T]],
               xid_of: Callable[[T], int | None] | None, attempt: _Attempt[T]) -> T:
    async with conn.transaction():
        result = attempt.result = await work(conn)
        # learned after work, still before COMMIT: all that matters (a break before this never committed)
        xid = xid_of(result) if xid_of is not None else None
        attempt.xid = xid if xid is not None else int(await conn.fetchval(XID_SQL))
        attempt.finished = True
    return result


def waited_out(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) says no connection came within the acquire timeout:
    acquiring again would only double the wait."""
    return any(isinstance(e, (PoolError, TimeoutError)) for e in (exc, exc.__cause__))


async def run_write(acquire: Callable[[], AbstractAsyncContextManager[Any]],
                    work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    xid_of: Callable[[T], int | None] | None = None,
                    broken: Callable[[BaseException], bool] = is_unavailable, wait: float = 5.0) -> T:
    """``await work(conn)`` in a transaction on a connection from ``acquire()``; return what it returned.

    ``xid_of(result)``: the transaction id ``work`` selected in one of its statements
    (``pg_current_xact_id()``), or None; without one (or without ``xid_of``) it is asked
    for with :data:`XID_SQL` after ``work``, before ``COMMIT`` (one round trip).

    When the attempt fails with an error ``broken`` accepts (default
    :func:`~perf.pool.unavailable.is_unavailable`: the connection broke), a fresh connection
    settles it: if the transaction committed (:func:`commit_status`, waiting up to ``wait``
    seconds for a transaction still running) its result is returned; otherwise ``work`` runs
    once more, and whatever that raises is raised. No connection to be had within the acquire's
    timeout (:func:`waited_out`) is raised at once. ``work`` must be safe to run twice when the
    first run rolled back (it sees the database as if it had not run), and must not commit itself.

    >>> task_id = await run_write(pool.acquire, lambda conn: conn.fetchval("INSERT ... RETURNING id"))
    """
    first: _Attempt[T] = _Attempt()
    try:
        async with acquire() as conn:
            first.acquired = True
            return await _run(conn, work, xid_of, first)
    except Exception as exc:
        if not broken(exc) or (not first.acquired and waited_out(exc)):
            raise

    async def settle(conn: asyncpg.Connection) -> T:
        # COMMIT was sent only if work returned; before that the transaction cannot have committed
        if first.finished and first.xid is not None \
                and await commit_status(conn, first.xid, wait=wait) == "committed":
            return cast(T, first.result)  # what work returned inside the transaction is what committed
        return await _run(conn, work, xid_of, _Attempt())

    # one connection that answers settles the first run and runs the second
    return await on_live_connection(acquire, settle, broken=broken, wait=wait)


async def on_live_connection(acquire: Callable[[], AbstractAsyncContextManager[Any]],
                             fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                             broken: Callable[[BaseException], bool] = is_unavailable, wait: float = 5.0,
                             settle: float = 0.01) -> T:
    """``await fn(conn)``, for a retry: ``settle`` seconds later, on a connection from ``acquire()``
    that has just answered ``SELECT 1``.

    When the server drops every connection at once (a restart), its backends act on the signal
    one by one and the notices reach the client one by one: the first caller to see one would
    retry at once, and the pool may lend it a connection whose backend is about to go too. So
    the retry waits ``settle`` (the others' notices arrive meanwhile and the pool drops those
    connections), then its connection must answer a probe; one that fails it (``broken``) is
    skipped for the next, for up to ``wait`` seconds. An acquire that fails is raised at once (the
    pool's own acquire is what waits out a restart), and so is whatever ``fn`` raises: ``fn`` runs once.
    In a test killing a pool's five backends together, a retry without either failed 27 times in
    100 (writes; reads 13), with the probe alone once in 440. Both cost only retries.

    >>> await on_live_connection(pool.acquire, lambda conn: conn.fetchval("SELECT 7"))
    7
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    await asyncio.sleep(settle)
    while True:
        lent = answered = False
        try:
            async with acquire() as conn:
                lent = True
                await conn.execute("SELECT 1")
                answered = True
                return await fn(conn)
        except Exception as exc:
            # only a connection lent dead is skipped: no connection at all is the caller's answer, as before
            if not lent or answered or not broken(exc) or loop.time() >= deadline:
                raise

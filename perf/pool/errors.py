"""Errors raised by :mod:`perf.pool`; each says what happened and what to do about it."""

from __future__ import annotations


class PoolError(Exception):
    """Base class of every error :mod:`perf.pool` raises."""


class PoolTimeout(PoolError, TimeoutError):
    """No connection became available within the acquire timeout."""


class PoolTooManyWaiters(PoolError):
    """``max_waiting`` callers are already queued: rejected at once instead of queueing."""


class PoolClosed(PoolError):
    """The pool is closed (or closing): no connection can be acquired from it."""


class PoolConnectError(PoolError, ConnectionError):
    """Opening a new connection failed; the original driver error is the ``__cause__``."""

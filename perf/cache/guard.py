"""Fail-open in one place: every Redis call a :class:`~perf.cache.multilevel.MultiLevelCache`
makes goes through :meth:`RedisGuard.call` (the role cashews' ``SafeRedis`` plays).

The guard is a small state machine::

    up ──(any exception from a Redis call)──▶ down until now + retry_interval
    down ──(retry_interval passed; the next call probes)──▶ replay what was missed ──ok──▶ up
                                                                                 └─fail─▶ down

While Redis is down no call is attempted: :meth:`RedisGuard.call` returns the caller's
``default`` at once (fail-open) or raises :class:`~perf.cache.errors.CacheUnavailable`
(``fail_open=False``). What the process could not send meanwhile (deleted keys, tag
invalidations, a namespace bump, single-flight leases it may have left behind) is
remembered in :class:`Missed` and replayed on recovery, before any other call goes out.

*Every* exception a Redis call raises counts as an outage, not only ``RedisError`` and
``OSError``: with uvloop, Redis killed in the middle of a ``PUBLISH`` raises
``RuntimeError: unable to perform operation on <TCPTransport closed=True>``, and a
half-torn connection can surface as other types. Catching a fixed list once let a
committed write answer 500 with its invalidation neither sent nor queued. Exceptions of
an unexpected type are logged with their traceback, so a real bug still shows.
Cancellation (``BaseException``) passes through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

from perf.cache.errors import CacheError, CacheUnavailable
from perf.cache.stats import CacheStats

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
D = TypeVar("D")

TRANSPORT_ERRORS = (RedisError, OSError)  # expected; anything else is logged with a traceback too
MAX_MISSED = 10_000


@dataclass(slots=True)
class Missed:
    """Work Redis missed while it was down, replayed in this order on recovery."""

    bump: bool = False
    tags: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    leases: dict[str, str] = field(default_factory=dict)  # lock key -> the token we may hold

    def __bool__(self) -> bool:
        return self.bump or bool(self.tags or self.keys or self.leases)

    def merge(self, other: Missed) -> None:
        """Add ``other``'s work to this one (a replay that failed part-way is retried whole)."""
        self.bump |= other.bump
        self.tags |= other.tags
        self.keys |= other.keys
        self.leases.update(other.leases)


class RedisGuard:
    """Redis's health as one cache sees it, and the one place a Redis failure is handled.

    ``name``: used in log lines and errors (the cache namespace). ``replay``: called with
    the :class:`Missed` work on recovery, before the cache is marked up; if it raises,
    Redis stays down and the work is kept. ``fail_open``: see the module docstring.
    ``on_change``: called with True when Redis is marked up, False when marked down (the
    cache stops trusting its L1 while it cannot tell whether invalidations reach it).
    """

    def __init__(self, name: str, *, stats: CacheStats, replay: Callable[[Missed], Awaitable[None]],
                 fail_open: bool = True, retry_interval: float = 1.0,
                 on_change: Callable[[bool], None] = lambda up: None) -> None:
        if not retry_interval > 0:
            raise ValueError(f"retry_interval={retry_interval!r} must be > 0 seconds (e.g. 1.0)")
        self.name = name
        self.stats = stats
        self.fail_open = fail_open
        self.retry_interval = retry_interval
        self.failed = True  # until open(): the first call goes through ready(), which refuses
        self.missed = Missed()
        self._replay = replay
        self._on_change = on_change
        self._down_until = 0.0
        self._state = "new"  # new | open | closed
        self._probe: asyncio.Lock = asyncio.Lock()

    # lifecycle -------------------------------------------------------------------------
    def open(self, *, up: bool) -> None:
        """Start serving calls; ``up=False`` starts degraded (Redis is probed after retry_interval)."""
        self._state = "open"
        if up:
            self.failed = False
            self._on_change(True)
        else:
            self.mark_failed(CacheUnavailable("Redis did not answer at start"), raise_=False)

    def close(self) -> None:
        """Refuse every later call (they raise RuntimeError)."""
        self._state = "closed"
        self.failed = True

    # the guarded call ------------------------------------------------------------------
    async def call(self, default: D, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T | D:
        """``await fn(*args, **kwargs)``, or ``default`` if Redis is (or just went) down.

        With ``fail_open=False`` an outage raises :class:`CacheUnavailable` instead.
        """
        if self.failed and not await self.ready():
            return default
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            self.mark_failed(exc)
            return default

    async def ready(self) -> bool:
        """True if Redis may be used now; once per ``retry_interval`` after a failure this
        probes it by replaying the missed work (one probe at a time)."""
        if not self.failed:
            return True
        if self._state != "open":
            state = "closed" if self._state == "closed" else "not started"
            raise RuntimeError(f"cache {self.name!r} is {state}: use `async with MultiLevelCache(...) as cache` "
                               "or `await cache.start()` first (and not after close())")
        if time.monotonic() < self._down_until or self._probe.locked():
            if not self.fail_open:
                raise CacheUnavailable(f"Redis is down for cache {self.name!r}; retrying in "
                                       f"{max(self._down_until - time.monotonic(), 0):.2f}s (fail_open=False)")
            return False
        async with self._probe:
            missed, self.missed = self.missed, Missed()
            try:
                await self._replay(missed)
            except Exception as exc:
                missed.merge(self.missed)
                self.missed = missed
                self.mark_failed(exc)
                return False
            if self._state == "open":
                self.failed = False
                self._on_change(True)
                logger.info("cache %r: Redis is back", self.name)
        return not self.failed

    def mark_failed(self, exc: BaseException, *, raise_: bool = True) -> None:
        """Record an outage: count it, log the first one, leave Redis alone for retry_interval."""
        self.stats.error("redis")
        if not self.failed:
            logger.warning("cache %r: Redis unavailable (%s: %s); serving from L1/loader", self.name,
                           type(exc).__name__, exc, exc_info=not isinstance(exc, (*TRANSPORT_ERRORS, CacheError)))
        was_up, self.failed = not self.failed, True
        self._down_until = time.monotonic() + self.retry_interval
        if was_up:
            self._on_change(False)
        if raise_ and not self.fail_open:
            raise CacheUnavailable(f"Redis failed for cache {self.name!r}: {exc!r}; "
                                   "pass fail_open=True to serve from L1/loader instead") from exc

    # missed work -----------------------------------------------------------------------
    def remember(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), bump: bool = False,
                 lease: tuple[str, str] | None = None) -> None:
        """Queue work Redis missed, for :meth:`ready` to replay (overflow: bump the version instead)."""
        missed = self.missed
        missed.keys.update(keys)
        missed.tags.update(tags)
        if lease is not None:
            if len(missed.leases) >= MAX_MISSED:
                missed.leases.clear()  # leases expire by themselves; these only end the wait sooner
            missed.leases[lease[0]] = lease[1]
        if bump or len(missed.keys) + len(missed.tags) > MAX_MISSED:
            missed.bump = True
            missed.keys.clear()
            missed.tags.clear()

"""The API's state as Prometheus metrics: cache, pool, task queue, PostgreSQL and Redis availability.

Request metrics are counted as requests pass (:mod:`perf.api.metrics`); these are read from
the objects that already keep them (``CacheStats``, ``PoolStats``, the queue's counts), so
the request path pays nothing for them. :class:`StateSampler` copies them into metrics
on the worker's registry:

* every ``interval`` seconds in each worker (``async with StateSampler(...)``), and on each
  scrape in the worker that answers it: per-worker figures (pool, cache, this worker's
  queue outcomes) are at most ``interval`` old in a scrape;
* on each scrape only, with I/O: PostgreSQL and Redis availability (a ping each, 1 s
  at most) and the queue's depth (one count in PostgreSQL). These describe the shared
  services, not a worker, so the most recent probe of any live worker is the value.

Counters of the objects (hits, acquires, task outcomes) are monotonic in each worker, so
each sample adds the difference to a Prometheus counter, which then sums over workers
and survives a worker's restart.

=========================================  =======  ==========================================
``perf_cache_hits_total{level}``           counter  ``l1`` (this process) or ``l2`` (Redis)
``perf_cache_misses_total``                counter  lookups that went to PostgreSQL
``perf_db_pool_size`` / ``_in_use``        gauge    open / borrowed connections, all workers
``perf_db_pool_max_size``                  gauge    the pools' capacity, all workers
``perf_db_pool_waiting``                   gauge    requests waiting for a connection now
``perf_db_pool_acquires_total``            counter  connections handed out
``perf_db_pool_wait_seconds_total``        counter  time spent waiting for them
``perf_db_pool_acquire_timeouts_total``    counter  acquires that gave up
``perf_queue_depth``                       gauge    unfinished upload tasks (PostgreSQL)
``perf_queue_tasks_total{outcome}``        counter  submitted, rejected, done, retried, dead, skipped
``perf_service_up{service}``               gauge    1 if ``postgres`` / ``redis`` answered a ping
=========================================  =======  ==========================================
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from perf.aio import cancel_and_wait

if TYPE_CHECKING:
    from perf.api.state import ApiState

logger = logging.getLogger(__name__)

QUEUE_OUTCOMES = ("submitted", "rejected", "done", "retried", "dead", "skipped")
PROBE_TIMEOUT = 1.0


class StateSampler:
    """Copies ``state``'s cache, pool and queue figures into ``registry``; probes services on a scrape."""

    def __init__(self, state: ApiState, registry: CollectorRegistry, *, interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval={interval!r} must be > 0 seconds (default 1.0)")
        self.state = state
        self.interval = interval
        r = registry
        self.cache_hits = Counter("perf_cache_hits", "Cache lookups answered, by level", ["level"], registry=r)
        self.cache_misses = Counter("perf_cache_misses", "Cache lookups that loaded from PostgreSQL", registry=r)
        self.pool = {name: Gauge(f"perf_db_pool_{name}", text, registry=r, multiprocess_mode="livesum")
                     for name, text in (("size", "Open PostgreSQL connections in the pools"),
                                        ("in_use", "Connections borrowed by requests"),
                                        ("max_size", "The pools' capacity"),
                                        ("waiting", "Requests waiting for a connection"))}
        self.pool_acquires = Counter("perf_db_pool_acquires", "Connections handed out by the pools", registry=r)
        self.pool_wait = Counter("perf_db_pool_wait_seconds", "Time requests waited for a connection", registry=r)
        self.pool_timeouts = Counter("perf_db_pool_acquire_timeouts", "Acquires that gave up waiting", registry=r)
        self.queue_tasks = Counter("perf_queue_tasks", "Upload tasks by outcome", ["outcome"], registry=r)
        self.queue_depth = Gauge("perf_queue_depth", "Unfinished upload tasks (queued, running, failed)",
                                 registry=r, multiprocess_mode="livemostrecent")
        self.up = Gauge("perf_service_up", "1 if the service answered a ping at the last scrape", ["service"],
                        registry=r, multiprocess_mode="livemostrecent")
        self._last: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def _advance(self, counter: Any, key: str, current: float) -> None:
        delta = current - self._last.get(key, 0.0)
        if delta > 0:
            counter.inc(delta)
            self._last[key] = current

    def sample(self) -> None:
        """Copy the cache's, the pool's and this worker's queue figures, and its requests in flight (no I/O)."""
        state = self.state
        state.metrics.publish()
        if state.cache is not None:
            counts = state.cache.stats.counts
            self._advance(self.cache_hits.labels("l1"), "l1", counts["l1_hits"])
            self._advance(self.cache_hits.labels("l2"), "l2", counts["l2_hits"])
            self._advance(self.cache_misses, "misses", counts["misses"])
        elif state.seed_cache is not None:  # the seed's cache is Redis only: its hits are L2 hits
            self._advance(self.cache_hits.labels("l2"), "l2", state.seed_cache.hits)
            self._advance(self.cache_misses, "misses", state.seed_cache.misses)
        if hasattr(state, "db"):
            db = state.db.stats()
            if "size" in db:
                in_use = db.get("in_use", db["size"] - db.get("idle", 0))
                for name, value in (("size", db["size"]), ("in_use", in_use), ("max_size", db["max_size"]),
                                    ("waiting", db.get("waiting", 0))):
                    self.pool[name].set(value)
            if "acquired" in db:
                self._advance(self.pool_acquires, "acquired", db["acquired"])
                self._advance(self.pool_wait, "wait_seconds", db["wait_seconds_total"])
                self._advance(self.pool_timeouts, "acquire_timeouts", db["acquire_timeouts"])
        if hasattr(state, "queue"):
            for outcome in QUEUE_OUTCOMES:
                self._advance(self.queue_tasks.labels(outcome), f"queue.{outcome}", state.queue.counts[outcome])

    async def probe(self) -> dict[str, Any]:
        """Ping PostgreSQL and Redis, count the queue (:data:`PROBE_TIMEOUT` each at most); the queue's stats.

        Also takes a :meth:`sample`, so the answering worker's own figures are current.
        """
        self.sample()
        state = self.state
        postgres, redis, queue = await asyncio.gather(_probe(state.db.ping()), _probe(state.redis.ping()),
                                                      _probe(state.queue.stats()))
        self.up.labels("postgres").set(postgres is not None)
        self.up.labels("redis").set(redis is not None)
        if isinstance(queue, dict):
            self.queue_depth.set(queue["depth"])
            return queue
        return {}

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a failed sample must not end sampling; the next one retries
                logger.warning("metrics sample failed", exc_info=True)

    async def start(self) -> StateSampler:
        """Sample every ``interval`` seconds until :meth:`close`."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="perf-api-metrics-sampler")
        return self

    async def close(self) -> None:
        """Stop sampling, after a last sample (what this worker counted reaches the server's sum)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.sample()

    async def __aenter__(self) -> StateSampler:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


async def _probe(call: Awaitable[Any]) -> Any:
    """``call``'s result, or None if it failed or took over :data:`PROBE_TIMEOUT` seconds."""
    try:
        result = await asyncio.wait_for(call, PROBE_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None
    return True if result is None else result

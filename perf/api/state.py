"""``ApiState``: the services one app instance (one worker process) owns.

:func:`perf.api.app.create_app` builds it, the lifespan fills it, the route handlers
(:mod:`perf.api.routes`) read it from the request (``request.scope["global_state"]["api"]``).
"""

from __future__ import annotations

import redis.asyncio as redis

from perf.api.database import Database
from perf.api.metrics import ApiMetrics
from perf.api.products import ProductService
from perf.api.sampling import StateSampler
from perf.api.seed_cache import SeedCache
from perf.api.settings import ApiSettings
from perf.cache.multilevel import MultiLevelCache
from perf.queue.durable import DurableQueue


class ApiState:
    """Settings and metrics from the start; ``db``, ``redis``, ``queue``, ``products`` once the lifespan ran.

    ``metrics``: the request metrics (:mod:`perf.api.metrics`; a new single-process one if
    not given); ``sampler`` copies the rest of this state into the same registry
    (:mod:`perf.api.sampling`).
    """

    db: Database
    redis: redis.Redis
    queue: DurableQueue
    products: ProductService

    def __init__(self, settings: ApiSettings, *, metrics: ApiMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else ApiMetrics()
        self.sampler = StateSampler(self, self.metrics.registry)
        self.cache: MultiLevelCache | None = None
        self.seed_cache: SeedCache | None = None

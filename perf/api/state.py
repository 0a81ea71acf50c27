"""``ApiState``: the services one app instance (one worker process) owns.

:func:`perf.api.app.create_app` builds it, the lifespan fills it, the route handlers
(:mod:`perf.api.routes`) read it from the request (``request.scope["global_state"]["api"]``).
"""

from __future__ import annotations

import redis.asyncio as redis

from perf.api.database import Database
from perf.api.products import ProductService
from perf.api.seed_cache import SeedCache
from perf.api.settings import ApiSettings
from perf.api.timing import RequestStats
from perf.cache.multilevel import MultiLevelCache
from perf.queue.durable import DurableQueue


class ApiState:
    """Settings and stats from the start; ``db``, ``redis``, ``queue``, ``products`` once the lifespan ran."""

    db: Database
    redis: redis.Redis
    queue: DurableQueue
    products: ProductService

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.cache: MultiLevelCache | None = None
        self.seed_cache: SeedCache | None = None

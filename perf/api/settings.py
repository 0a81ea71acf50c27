"""The API's settings and its ``mode``: which optimisations are switched on.

``ApiMode`` holds five independent switches, so notebook 05 can measure each one's
contribution against the seed-style baseline:

==============  ========================================  ==========================================
switch          on (optimised)                            off (seed-style baseline)
==============  ========================================  ==========================================
``cache``       reads through MultiLevelCache (L1+Redis)  every read goes to PostgreSQL
``pool``        one perf.pool connection pool             asyncpg.connect() per request
``keyset``      ``?after=ID`` pages with ``id > $1``      ``?after=`` ignored, LIMIT/OFFSET only
``compression`` CompressionMiddleware (br/zstd/gzip)      identity bodies
``join``        one query (JOIN + array_agg)              N+1: 1 + 2N queries
``fastpath``    cached ``GET /products/{id}`` answered     every request goes through Nexios
                below Nexios (needs ``cache``)
==============  ========================================  ==========================================

Spell a mode as ``"all"`` (every switch on), ``"baseline"`` (every switch off) or a
comma list starting from one of them: ``"all,-cache"``, ``"baseline,+pool,+join"``.
A bare ``"cache,pool"`` means "only these on".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from perf.config import Settings

SWITCHES = ("cache", "pool", "keyset", "compression", "join", "fastpath")


@dataclass(frozen=True)
class ApiMode:
    """Which optimisations are on. ``ApiMode.parse("all,-cache")``; ``str(mode)`` round-trips."""

    cache: bool = True
    pool: bool = True
    keyset: bool = True
    compression: bool = True
    join: bool = True
    fastpath: bool = True

    @classmethod
    def parse(cls, text: str | ApiMode) -> ApiMode:
        """Parse ``all``, ``baseline``, ``all,-cache``, ``baseline,+pool`` or ``cache,pool``."""
        if isinstance(text, ApiMode):
            return text
        tokens = [t.strip().lower() for t in str(text).split(",") if t.strip()]
        if not tokens:
            raise ValueError(f"mode={text!r} is empty: use 'all', 'baseline' or e.g. 'all,-cache'")
        if tokens[0] in ("all", "optimized", "optimised"):
            mode, tokens = cls(), tokens[1:]
        elif tokens[0] in ("baseline", "none"):
            mode, tokens = cls.baseline(), tokens[1:]
        else:
            mode = cls.baseline()
        changes: dict[str, bool] = {}
        for token in tokens:
            on = not token.startswith("-")
            name = token.lstrip("+-")
            if name not in SWITCHES:
                raise ValueError(f"mode={text!r}: unknown switch {name!r}; switches are {', '.join(SWITCHES)} "
                                 "(e.g. mode='all,-cache' or 'baseline,+pool')")
            changes[name] = on
        return replace(mode, **changes)

    @classmethod
    def baseline(cls) -> ApiMode:
        """Every optimisation off: the seed tutorial's API."""
        return cls(**{name: False for name in SWITCHES})

    def as_dict(self) -> dict[str, bool]:
        """``{"cache": True, ...}`` for /metrics and result tables."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        off = [name for name in SWITCHES if not getattr(self, name)]
        if not off:
            return "all"
        on = [name for name in SWITCHES if getattr(self, name)]
        return "baseline" + "".join(f",+{name}" for name in on)


@dataclass(frozen=True)
class ApiSettings:
    """Everything :func:`perf.api.app.create_app` needs; build with keywords or :meth:`from_settings`.

    ``schema``: PostgreSQL schema holding the product tables (created if missing).
    ``products``: if > 0, seed that many products at startup unless already there.
    ``cache_namespace``: Redis key prefix and invalidation channel of this API's cache.
    ``pool_min`` / ``pool_max``: connection pool bounds per worker (mode ``pool``).
    ``max_body``: request bodies larger than this many bytes get 413.
    ``task_*``: the durable queue behind ``POST /uploads``: unfinished tasks at most across
    workers (``task_queue_size``, then 429), tasks run at once per worker, per-attempt timeout,
    attempts before ``dead``, retry backoff (s, doubled each time), lease (s without a
    heartbeat before another worker takes a task over), retention of finished results (s),
    seconds shutdown waits for running uploads before returning them to the queue (``task_drain``).
    ``shutdown_grace``: seconds after SIGTERM during which uploads answer 503 before the server stops.
    ``upload_delay``: seconds each upload task "processes" (simulated work).
    """

    database_url: str
    redis_url: str | None
    mode: ApiMode = field(default_factory=ApiMode)
    schema: str = "api"
    products: int = 0
    cache_namespace: str = "api"
    cache_ttl: float = 300.0
    pool_min: int = 2
    pool_max: int = 10
    max_body: int = 1024 * 1024
    task_workers: int = 4
    task_queue_size: int = 1000
    task_timeout: float = 30.0
    task_max_attempts: int = 3
    task_backoff: float = 0.5
    task_lease: float = 10.0
    task_retention: float = 3600.0
    task_drain: float = 3.0
    shutdown_grace: float = 1.0
    upload_delay: float = 0.01
    debug: bool = False

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ValueError("database_url is required: pass services.database_url")
        if not self.schema.isidentifier():
            raise ValueError(f"schema={self.schema!r} must be a plain identifier such as 'api'")
        if not 1 <= self.pool_min <= self.pool_max:
            raise ValueError(f"pool_min={self.pool_min} and pool_max={self.pool_max} need 1 <= pool_min <= pool_max")
        if self.max_body < 1:
            raise ValueError(f"max_body={self.max_body} must be >= 1 byte (default 1 MiB)")
        object.__setattr__(self, "mode", ApiMode.parse(self.mode))

    @classmethod
    def from_settings(cls, settings: Settings, *, database_url: str | None = None, redis_url: str | None = None,
                      **overrides: Any) -> ApiSettings:
        """Build from the workbook's :class:`~perf.config.Settings` (URLs may come from ``ensure_services``)."""
        return cls(database_url=database_url or settings.database_url or "",
                   redis_url=redis_url if redis_url is not None else settings.redis_url, **overrides)

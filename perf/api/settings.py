"""The API's settings and its ``mode``: which optimisations are switched on.

``ApiMode`` holds five independent switches and one base, ``syllabus``, that says what
a switch that is *off* falls back to: the syllabus' own piece (``syllabus=True``, the
modes spelled ``baseline,...``) or the naive one (``syllabus=False``, ``naive,...``).

==============  ======================================  =================================  =========================
switch          on (this workbook's)                    off in ``baseline`` (syllabus)     off in ``naive``
==============  ======================================  =================================  =========================
``cache``       MultiLevelCache (L1+Redis, tags,        the seed's JSON ``CacheManager``   no cache: every read
                pub/sub invalidation)                   (:mod:`perf.api.seed_cache`)       goes to PostgreSQL
``pool``        one :mod:`perf.pool` pool               ``asyncpg.create_pool``,           ``asyncpg.connect()``
                (``pool_min``..``pool_max``)            the seed's min 5 / max 20          per request
``keyset``      ``?after=ID`` pages with ``id > $1``    ``?after=`` ignored: OFFSET        same
``compression`` CompressionMiddleware (br/zstd/gzip)    identity bodies (see below)        same
``join``        one query (JOIN + array_agg)            on in ``baseline``: the seed joins N+1: 1 + 2N queries
==============  ======================================  =================================  =========================

The named modes, switch by switch:

* ``all``: every switch on (the base does not matter). ``all,-cache`` turns one off and
  falls back to the **naive** piece (no cache), as before.
* ``baseline``: the syllabus' mini-project ("High-Performance API", day 13) as written:
  asyncpg's pool (5..20 connections), the seed's Redis cache, one JOIN for the detail
  page, count + OFFSET for the list page, no keyset, no compression. In
  switch terms ``join`` on, the other four off, ``syllabus=True``. ``baseline,+join`` is
  the same mode; ``baseline,-join`` swaps in N+1.
* ``naive``: every switch off, ``syllabus=False``: a new connection per request, N+1
  queries (1 + 2N a list page), no cache. The design before anyone optimised anything.

Where ``baseline`` differs from the syllabus' code, and why:

* The cache is the mini-project's JSON ``CacheManager`` (:mod:`perf.api.seed_cache`,
  orjson for its ujson), not the day's first one (pickle, ``KEYS`` in ``clear``): a served
  app never unpickles what Redis hands it. Both store whole responses under
  ``products:{category}:{page}:{per_page}`` and ``product:{id}`` for ``cache_ttl``
  seconds. Keys are prefixed with ``cache_namespace`` (so two servers never share them).
  Its invalidation bug is kept: a write calls ``delete("<ns>:products:*")``, a literal key
  that never exists, so **list pages stay stale for ``cache_ttl`` after a write**. The
  syllabus has no PATCH/DELETE; ours also ``delete`` the product's own key (an exact key,
  which works), so detail pages are fresh.
* The seed runs the count and the page with ``asyncio.gather`` on *one* connection,
  which asyncpg refuses ("another operation is in progress"); ``baseline`` runs them one
  after the other on the acquired connection.
* Compression: the mini-project defines ``PerformanceMiddleware`` but never registers
  it (and as a Nexios function middleware it would compress nothing:
  :mod:`perf.compression.naive`), so ``baseline`` has none.
* The list filters by ``category`` id and orders by ``id`` (this API's contract), where
  the seed filters by category name and orders by ``created_at DESC``.
* Nexios' own per-request path follows ``nexios_lean`` (on by default: no stream bridges,
  handlers called directly, :class:`perf.api.errors.SafeRoute`) in every mode, so the
  framework's cost is the same across modes.

Spell a mode as ``"all"``, ``"baseline"``, ``"naive"`` or a comma list starting from
one of them: ``"all,-cache"``, ``"baseline,+pool"``, ``"naive,+join"``. A bare
``"cache,pool"`` means "only these on" (base ``naive``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, fields, replace
from typing import Any

from perf.config import Settings

SWITCHES = ("cache", "pool", "keyset", "compression", "join")
#: Switches that existed once, and why they are gone (named in the error a stale mode string gets).
RETIRED = {"fastpath": "retired: cached reads now go through Nexios at near bare-ASGI cost on every route "
                       "(perf.api.errors.SafeRoute); compare /bare/products with python -m perf.bench.api"}


@dataclass(frozen=True)
class ApiMode:
    """Which optimisations are on, and what an off switch falls back to (see the module docstring).

    ``ApiMode.parse("all,-cache")``; ``str(mode)`` round-trips.

    >>> str(ApiMode.parse("baseline,+cache"))
    'baseline,+cache'
    >>> ApiMode.parse("baseline").join, ApiMode.parse("naive").join
    (True, False)
    """

    cache: bool = True
    pool: bool = True
    keyset: bool = True
    compression: bool = True
    join: bool = True
    syllabus: bool = False

    def __post_init__(self) -> None:
        if all(getattr(self, name) for name in SWITCHES):  # nothing falls back: one "all"
            object.__setattr__(self, "syllabus", False)

    @classmethod
    def parse(cls, text: str | ApiMode) -> ApiMode:
        """Parse ``all``, ``baseline``, ``naive``, ``all,-cache``, ``baseline,+pool`` or ``cache,pool``."""
        if isinstance(text, ApiMode):
            return text
        tokens = [t.strip().lower() for t in str(text).split(",") if t.strip()]
        if not tokens:
            raise ValueError(f"mode={text!r} is empty: use 'all', 'baseline', 'naive' or e.g. 'all,-cache'")
        if tokens[0] in ("all", "optimized", "optimised"):
            mode, tokens = cls(), tokens[1:]
        elif tokens[0] in ("baseline", "syllabus"):
            mode, tokens = cls.baseline(), tokens[1:]
        elif tokens[0] in ("naive", "none"):
            mode, tokens = cls.naive(), tokens[1:]
        else:
            mode = cls.naive()
        changes: dict[str, bool] = {}
        for token in tokens:
            on = not token.startswith("-")
            name = token.lstrip("+-")
            if name in RETIRED:
                raise ValueError(f"mode={text!r}: switch {name!r} is {RETIRED[name]}")
            if name not in SWITCHES:
                raise ValueError(f"mode={text!r}: unknown switch {name!r}; switches are {', '.join(SWITCHES)} "
                                 "(e.g. mode='all,-cache', 'baseline,+pool' or 'naive,+join')")
            changes[name] = on
        return replace(mode, **changes)

    @classmethod
    def baseline(cls) -> ApiMode:
        """The syllabus' mini-project: asyncpg pool, the seed's cache, JOIN, count + OFFSET."""
        return cls(**{name: name == "join" for name in SWITCHES}, syllabus=True)

    @classmethod
    def naive(cls) -> ApiMode:
        """Every optimisation off: a connection per request, N+1 queries, no cache."""
        return cls(**{name: False for name in SWITCHES}, syllabus=False)

    def as_dict(self) -> dict[str, bool]:
        """``{"cache": True, ...}``: the five switches, for /metrics and result tables."""
        return {name: getattr(self, name) for name in SWITCHES}

    def __str__(self) -> str:
        if all(getattr(self, name) for name in SWITCHES):
            return "all"
        base, start = ("baseline", ApiMode.baseline()) if self.syllabus else ("naive", ApiMode.naive())
        changes = [("+" if getattr(self, n) else "-") + n for n in SWITCHES if getattr(self, n) != getattr(start, n)]
        return ",".join([base, *changes])


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def new_token() -> str:
    """A fresh random bearer token (32 URL-safe characters) for the API's write routes."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ApiSettings:
    """Everything :func:`perf.api.app.create_app` needs: the single source of the API's settings.

    Every field is also a ``python -m perf api --field-name`` flag (:mod:`perf.api.cli`
    derives them from :func:`dataclasses.fields`), and :class:`perf.api.server.ApiServer`
    hands a whole ``ApiSettings`` to its child process. Each field's ``help`` is in its
    metadata; build with keywords or :meth:`from_settings`.

    >>> ApiSettings(database_url="postgresql://localhost/perf", redis_url=None, mode="all,-cache").cache_namespace
    'api'
    """

    database_url: str = field(metadata=_help("PostgreSQL URL (CLI default: DATABASE_URL or the embedded server)"))
    redis_url: str | None = field(default=None, metadata=_help("Redis URL (CLI default: REDIS_URL or embedded)"))
    mode: ApiMode = field(default_factory=ApiMode, metadata=_help(
        "'all', 'baseline' (the syllabus'), 'naive' or e.g. 'all,-cache' / 'baseline,+pool'; "
        f"switches: {', '.join(SWITCHES)}"))
    schema: str = field(default="api", metadata=_help("PostgreSQL schema of the product tables (created if missing)"))
    products: int = field(default=0, metadata=_help("seed this many generated products at startup (once)"))
    cache_namespace: str = field(default="", metadata=_help(
        "Redis key prefix and invalidation channel of the cache (empty: the schema's name)"))
    cache_ttl: float = field(default=300.0, metadata=_help("seconds a cached product or page lives"))
    cache_l1_bytes: int = field(default=32 * 1024 * 1024, metadata=_help(
        "bound of each worker's in-process cache, in serialized bytes (its RSS is ~2.5-4x this)"))
    cache_pg_notify: bool = field(default=True, metadata=_help(
        "also send each write's invalidation with PostgreSQL NOTIFY in its transaction, so it reaches every "
        "worker while Redis is down (off: Redis pub/sub only, and no L1 while Redis is unreachable)"))
    pool_min: int = field(default=2, metadata=_help(
        "pool connections kept open per worker (mode pool; baseline's asyncpg pool uses the seed's 5)"))
    pool_max: int = field(default=10, metadata=_help(
        "pool size per worker (mode pool; baseline's asyncpg pool uses the seed's 20)"))
    db_timeout: float = field(default=10.0, metadata=_help(
        "seconds a request waits for a PostgreSQL connection, a server restart included (then 503)"))
    max_body: int = field(default=1024 * 1024, metadata=_help("request bodies over this many bytes get 413"))
    max_head: int = field(default=64 * 1024, metadata=_help(
        "request heads (request line + headers) over this many bytes, or over 100 header lines, get 431"))
    read_timeout: float = field(default=20.0, metadata=_help(
        "seconds a client may take to send a request's head, and its whole body (then 408 and close)"))
    api_token: str = field(default_factory=new_token, repr=False, metadata=_help(
        "bearer token the write routes require (default: PERF_API_TOKEN, else a new random one, printed)"))
    task_workers: int = field(default=4, metadata=_help("upload task workers per worker process"))
    task_queue_size: int = field(default=1000, metadata=_help("unfinished uploads at most, across workers (then 429)"))
    task_timeout: float = field(default=30.0, metadata=_help("seconds one attempt of an upload task may run"))
    task_max_attempts: int = field(default=3, metadata=_help("attempts before a task is dead"))
    task_backoff: float = field(default=0.5, metadata=_help("seconds before the first retry (doubled each time)"))
    task_lease: float = field(default=10.0, metadata=_help(
        "seconds without a heartbeat before another worker takes a task over"))
    task_retention: float = field(default=3600.0, metadata=_help("seconds finished task results are kept"))
    task_drain: float = field(default=3.0, metadata=_help(
        "seconds shutdown waits for running uploads before returning them to the queue"))
    shutdown_grace: float = field(default=1.0, metadata=_help(
        "seconds after SIGTERM during which uploads answer 503 before the server stops"))
    upload_delay: float = field(default=0.01, metadata=_help("seconds each upload task takes (simulated work)"))
    nexios_lean: bool = field(default=True, metadata=_help(
        "serve routes without Nexios' two per-request stream bridges and its per-route handler wrapper "
        "(off: the framework's default path, ~0.25 ms a request more)"))
    bare_routes: bool = field(default=False, metadata=_help(
        "also serve every product route without the framework under /bare/ (perf.api.bare_routes: the "
        "benchmark's baseline for Nexios' cost; off in the product)"))

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ValueError("database_url is required: pass services.database_url")
        if not self.schema.isidentifier():
            raise ValueError(f"schema={self.schema!r} must be a plain identifier such as 'api'")
        if not 1 <= self.pool_min <= self.pool_max:
            raise ValueError(f"pool_min={self.pool_min} and pool_max={self.pool_max} need 1 <= pool_min <= pool_max")
        if self.max_body < 1:
            raise ValueError(f"max_body={self.max_body} must be >= 1 byte (default 1 MiB)")
        if self.cache_l1_bytes < 1:
            raise ValueError(f"cache_l1_bytes={self.cache_l1_bytes} must be >= 1 byte (default 32 MiB)")
        if self.products < 0:
            raise ValueError(f"products={self.products} must be >= 0 (0: do not seed)")
        if not 0 < self.db_timeout <= 300:
            raise ValueError(f"db_timeout={self.db_timeout} must be in (0, 300] seconds (default 10)")
        if not 1024 <= self.max_head <= 16 * 1024 * 1024:
            raise ValueError(f"max_head={self.max_head} must be in [1024, 16 MiB] bytes (default 65536)")
        if not 0 < self.read_timeout <= 300:
            raise ValueError(f"read_timeout={self.read_timeout} must be in (0, 300] seconds (default 20)")
        if len(self.api_token) < 16 or not self.api_token.isascii() or not self.api_token.isprintable():
            raise ValueError("api_token must be >= 16 printable ASCII characters: use perf.api.settings.new_token()")
        object.__setattr__(self, "mode", ApiMode.parse(self.mode))
        if not self.cache_namespace:
            object.__setattr__(self, "cache_namespace", self.schema)

    @classmethod
    def from_settings(cls, settings: Settings, *, database_url: str | None = None, redis_url: str | None = None,
                      **overrides: Any) -> ApiSettings:
        """Build from the workbook's :class:`~perf.config.Settings` (URLs may come from ``ensure_services``)."""
        return cls(database_url=database_url or settings.database_url or "",
                   redis_url=redis_url if redis_url is not None else settings.redis_url, **overrides)

    def to_json(self) -> str:
        """JSON of every field (``mode`` as its string): what a worker process rebuilds with :meth:`from_json`."""
        payload = {f.name: getattr(self, f.name) for f in fields(self)}
        payload["mode"] = str(self.mode)
        return json.dumps(payload)

    @classmethod
    def from_json(cls, text: str) -> ApiSettings:
        """The settings :meth:`to_json` wrote."""
        return cls(**json.loads(text))

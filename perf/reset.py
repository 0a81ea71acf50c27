"""Presenter reset: drop what the notebooks, benchmarks and the API created, and nothing else.

The workbook names everything it creates (see the patterns below); ``plan_reset`` finds what
exists under those names and ``apply_reset`` removes it. A schema or Redis key whose name
matches no pattern is never touched, so a ``DATABASE_URL`` / ``REDIS_URL`` server's own data
survives. ``python -m perf reset`` (and ``python3 tasks.py reset``) is the command line.
"""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from perf.db.ident import quote_ident

#: PostgreSQL schemas the workbook creates: notebooks (``nb_cache``, ``nb_db``, ``nb05_api``),
#: benchmarks (``bench_db``, ...) and the API's default schema (``api``).
SCHEMA_PATTERNS: tuple[str, ...] = ("nb_*", "nb[0-9][0-9]_*", "bench_*", "ex_*", "api")

#: Redis key prefixes the workbook writes (the exercises' checks use ``ex_*`` schemas and
#: ``ex:*`` keys): notebook cache namespaces (``nb:cache:<run>:...``,
#: ``nb05_api:stress:...``), benchmark namespaces and the API's default cache namespace.
KEY_PATTERNS: tuple[str, ...] = ("nb:*", "nb_*", "nb[0-9][0-9]_*", "bench:*", "bench_*", "ex:*", "api:*")

#: Tables the workbook creates in those schemas (perf.db.schema, perf.cache.demo_workload,
#: notebook 02's scratch table). On a server named by DATABASE_URL a schema holding any other
#: table is someone else's, whatever its name, and is kept.
WORKBOOK_TABLES = frozenset({"categories", "products", "product_images", "seed_info", "catalog", "demo_writes"})

#: Never dropped, whatever the patterns say.
PROTECTED_SCHEMAS = frozenset({"public", "information_schema", "pg_catalog", "pg_toast"})


@dataclass
class ResetPlan:
    """What a reset would remove: schemas (with their table count), Redis keys, run folders."""

    schemas: dict[str, int] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)  # pattern -> keys
    runs: list[Path] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # schema -> foreign tables that saved it

    @property
    def empty(self) -> bool:
        """True when there is nothing to remove."""
        return not (self.schemas or any(self.keys.values()) or self.runs)

    def describe(self) -> list[str]:
        """One line per schema, key pattern and run folder, as shown before and after a reset."""
        lines = [f"schema {name} ({tables} tables)" for name, tables in sorted(self.schemas.items())]
        lines += [f"{len(keys)} Redis keys matching {pattern!r}" for pattern, keys in self.keys.items() if keys]
        lines += [f"saved run {path}" for path in self.runs]
        return lines

    def describe_kept(self) -> list[str]:
        """One line per matching schema left alone because it holds tables the workbook does not make."""
        return [f"schema {name}: holds {', '.join(tables[:5])}{' ...' if len(tables) > 5 else ''}, "
                "tables the workbook does not create" for name, tables in sorted(self.kept.items())]


def owned_schema(name: str) -> bool:
    """True when ``name`` is a schema the workbook creates.

    >>> [owned_schema(n) for n in ("nb_db", "nb05_api", "bench_db", "api", "public", "api_v2", "sales")]
    [True, True, True, True, False, False, False]
    """
    return name not in PROTECTED_SCHEMAS and any(fnmatch.fnmatchcase(name, p) for p in SCHEMA_PATTERNS)


def owned_key(key: str) -> bool:
    """True when Redis ``key`` lies under a prefix the workbook writes.

    >>> [owned_key(k) for k in ("nb:cache:1a2b:v1:product:7", "nb05_api:stress:x", "api:v1:p", "session:42")]
    [True, True, True, False]
    """
    return any(fnmatch.fnmatchcase(key, p) for p in KEY_PATTERNS)


async def plan_reset(database_url: str, redis_url: str, *, runs_dir: Path | None = None,
                     foreign_server: bool = False) -> ResetPlan:
    """Find the workbook's schemas, Redis keys and (when ``runs_dir`` is given) saved runs.

    ``foreign_server=True`` (a ``DATABASE_URL`` server, not the embedded one) also requires
    every table in a schema to be one the workbook creates; other schemas go to ``plan.kept``.
    """
    plan = ResetPlan()
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT n.nspname AS name, array_remove(array_agg(c.relname::text ORDER BY c.relname), NULL) AS tables "
            "FROM pg_namespace n "
            "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "GROUP BY n.nspname")
    finally:
        await conn.close()
    for row in rows:
        name, tables = row["name"], list(row["tables"])
        if not owned_schema(name):
            continue
        foreign = [t for t in tables if t not in WORKBOOK_TABLES]
        if foreign_server and foreign:
            plan.kept[name] = foreign
        else:
            plan.schemas[name] = len(tables)
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in KEY_PATTERNS:
            found = [key.decode("utf-8", "replace") async for key in client.scan_iter(match=pattern, count=1000)]
            plan.keys[pattern] = sorted(set(found) - {k for keys in plan.keys.values() for k in keys})
    finally:
        await client.aclose()
    if runs_dir is not None and runs_dir.is_dir():
        plan.runs = sorted(p for p in runs_dir.iterdir())
    return plan


async def apply_reset(plan: ResetPlan, database_url: str, redis_url: str) -> ResetPlan:
    """Remove what ``plan`` lists (rechecking each schema name); return what was removed."""
    removed = ResetPlan()
    conn = await asyncpg.connect(database_url)
    try:
        for name, tables in plan.schemas.items():
            if not owned_schema(name):  # plans are plain data: never trust one built elsewhere
                raise ValueError(f"schema {name!r} is not one the workbook creates (patterns {SCHEMA_PATTERNS})")
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
            removed.schemas[name] = tables
    finally:
        await conn.close()
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern, keys in plan.keys.items():
            foreign = [k for k in keys if not owned_key(k)]
            if foreign:
                raise ValueError(f"keys {foreign[:3]} are not ones the workbook writes (patterns {KEY_PATTERNS})")
            for start in range(0, len(keys), 500):
                await client.unlink(*keys[start:start + 500])
            removed.keys[pattern] = keys
    finally:
        await client.aclose()
    for path in plan.runs:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.runs.append(path)
    return removed

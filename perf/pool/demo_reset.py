"""What each reset mode guarantees, measured on the server: a borrower dirties its session, the
next borrower of the same connection looks, and the answer is compared with a new connection's.

>>> table = await reset_guarantees(dsn)   # a DataFrame: one row per case, one column per mode
>>> table.loc["SET inside a function", "session"]
'LEAKS (777ms)'

Each case is one thing a borrower can leave behind (:data:`CASES`); the functions, the
sequence and the role the cases need are created for the run and dropped after it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pandas as pd

from perf.pool import ResetMode, create_pool

MODES: tuple[ResetMode, ...] = ("always", "session", "none")


@dataclass(frozen=True)
class Case:
    """``setup``: SQL the first borrower runs (``{s}`` = the scratch schema, ``{role}`` = a role);
    ``probe``: SQL returning one text value the next borrower reads."""

    name: str
    setup: str
    probe: str


CASES: tuple[Case, ...] = (
    Case("SET statement_timeout", "SET statement_timeout = '1234ms'", "SHOW statement_timeout"),
    Case("SET search_path", "SET search_path = {s}", "SHOW search_path"),
    Case("set_config(..., false)", "SELECT set_config('work_mem', '7MB', false)", "SHOW work_mem"),
    Case("SET inside a function", "SELECT {s}.set_inside()", "SHOW statement_timeout"),
    Case("set_config inside a function", "SELECT {s}.set_config_inside()", "SHOW search_path"),
    Case("SET ROLE", "SET ROLE {role}", "SELECT current_user::text"),
    Case("advisory lock", "SELECT pg_advisory_lock(424242)",
         "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
    Case("advisory lock inside a function", "SELECT {s}.lock_inside()",
         "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
    Case("LISTEN", "LISTEN perf_reset_case", "SELECT coalesce(string_agg(c, ','), '') FROM pg_listening_channels() c"),
    Case("cursor WITH HOLD", "DECLARE perf_held CURSOR WITH HOLD FOR SELECT 1",
         "SELECT count(*)::text FROM pg_cursors"),
    Case("temporary table", "CREATE TEMP TABLE perf_tmp (x int)",
         "SELECT coalesce(to_regclass('pg_temp.perf_tmp')::text, '')"),
    Case("temporary table inside a function", "SELECT {s}.temp_inside()",
         "SELECT coalesce(to_regclass('pg_temp.perf_tmp_fn')::text, '')"),
    Case("SQL PREPARE", "PREPARE perf_prepared AS SELECT 1",
         "SELECT coalesce(string_agg(name, ','), '') FROM pg_prepared_statements WHERE from_sql"),
    Case("sequence state (nextval)", "SELECT nextval('{s}.perf_seq')", "SELECT lastval()::text"),
)

_SCRATCH = """
CREATE FUNCTION {s}.set_inside() RETURNS int LANGUAGE plpgsql AS $$
    BEGIN SET statement_timeout = '777ms'; RETURN 1; END $$;
CREATE FUNCTION {s}.set_config_inside() RETURNS int LANGUAGE sql AS $$
    SELECT set_config('search_path', 'pg_catalog', false); SELECT 1 $$;
CREATE FUNCTION {s}.lock_inside() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_lock(434343) $$;
CREATE FUNCTION {s}.temp_inside() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN EXECUTE 'CREATE TEMP TABLE perf_tmp_fn (x int)'; END $$;
CREATE SEQUENCE {s}.perf_seq;
CREATE ROLE {role} NOLOGIN;
GRANT {role} TO CURRENT_USER;
"""


async def _probe(conn: asyncpg.Connection, sql: str) -> str:
    try:
        value = await conn.fetchval(sql)
    except asyncpg.PostgresError as exc:
        return f"error {exc.sqlstate}"
    return str(value)


async def observe(dsn: str, case: Case, mode: ResetMode, *, schema: str, role: str) -> tuple[str, str]:
    """(what a new connection's probe reads, what the next borrower reads after ``case`` under ``mode``)."""
    fresh = await asyncpg.connect(dsn)
    try:
        clean = await _probe(fresh, case.probe)
    finally:
        await fresh.close()
    async with create_pool(dsn, min_size=1, max_size=1, reset=mode) as pool:
        async with pool.acquire() as conn:
            await conn.execute(case.setup.format(s=schema, role=role))
        async with pool.acquire() as conn:
            seen = await _probe(conn, case.probe)
    return clean, seen


@asynccontextmanager
async def scratch(dsn: str) -> AsyncIterator[tuple[str, str]]:
    """``(schema, role)`` holding what :data:`CASES` need (functions, a sequence, a role), dropped after.

    Needs a role that may create roles (the embedded server's ``postgres`` does).
    """
    tag = uuid.uuid4().hex[:10]
    schema, role = f"perf_reset_{tag}", f"perf_reset_{tag}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        await admin.execute(_SCRATCH.format(s=schema, role=role))
        yield schema, role
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def reset_guarantees(dsn: str, *, modes: tuple[ResetMode, ...] = MODES,
                           cases: tuple[Case, ...] = CASES) -> pd.DataFrame:
    """One row per case, one column per reset mode: ``"clean"`` or ``"LEAKS (<what the next borrower saw>)"``."""
    rows: dict[str, dict[str, str]] = {}
    async with scratch(dsn) as (schema, role):
        for case in cases:
            row = rows[case.name] = {}
            for mode in modes:
                clean, seen = await observe(dsn, case, mode, schema=schema, role=role)
                row[mode] = "clean" if seen == clean else f"LEAKS ({seen})"
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "a borrower left"
    return table

"""perf.pool's reset modes: what a borrower's session changes leave for the next borrower."""

from __future__ import annotations

import inspect
import io

import asyncpg
import pytest

from perf.pool import Pool, create_pool
from perf.pool.demo_reset import CASES, Case, observe, reset_guarantees, scratch
from perf.pool.session import QUERY_METHODS, SessionTrackingConnection, changes_session


async def _dirty(conn: asyncpg.Connection, schema: str) -> None:
    """What a careless borrower leaves behind: two settings and a session advisory lock."""
    await conn.execute("SET statement_timeout = '1234ms'")
    await conn.execute(f"SET search_path = {schema}")
    await conn.execute("SELECT pg_advisory_lock(424242)")


async def _session_state(conn: asyncpg.Connection) -> tuple[str, str, int]:
    return (await conn.fetchval("SHOW statement_timeout"), await conn.fetchval("SHOW search_path"),
            await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"))


async def _next_borrower_sees(pool: Pool[asyncpg.Connection], schema: str) -> tuple[str, str, int]:
    async with pool.acquire() as conn:
        clean = await _session_state(conn)
        await _dirty(conn, schema)
    async with pool.acquire() as conn:
        assert pool.stats().created == 1  # the same connection, handed to the next borrower
        return clean + await _session_state(conn)  # type: ignore[return-value]


@pytest.mark.parametrize("mode", ["session", "always"])
async def test_safe_modes_clear_settings_search_path_and_advisory_locks(database_url: str, pg_schema: str,
                                                                         mode: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, reset=mode) as pool:  # type: ignore[arg-type]
        seen = await _next_borrower_sees(pool, pg_schema)
        assert seen[3:] == seen[:3]  # exactly what a fresh connection has
        assert seen[3] == "0" and pg_schema not in seen[4] and seen[5] == 0
    # "session" reset only after the dirty borrow; "always" after the clean one too
    assert pool.stats().session_resets == (1 if mode == "session" else 2)


async def test_none_mode_leaks_session_state_to_the_next_borrower(database_url: str, pg_schema: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, reset="none") as pool:
        seen = await _next_borrower_sees(pool, pg_schema)
        assert seen[3:] == ("1234ms", pg_schema, 1)
        assert pool.stats().session_resets == 0


async def test_session_mode_keeps_connection_defaults_and_rolls_back_in_the_same_trip(
        database_url: str, pg_schema: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, reset="session",
                           server_settings={"search_path": pg_schema}) as pool:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT set_config('search_path', 'public', false)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW search_path") == pg_schema  # the connection's own setting
        stats = pool.stats()
        assert (stats.rolled_back, stats.session_resets, stats.created) == (1, 1, 1)


async def test_session_mode_resets_only_after_session_changing_sql(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, reset="session") as pool:
        for _ in range(20):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT $1::int", 1)
                await conn.execute("SELECT 1")
        assert pool.stats().session_resets == 0
        async with pool.acquire() as conn:
            await conn.execute("SET LOCAL work_mem = '8MB'")  # transaction-scoped: no reset needed
        assert pool.stats().session_resets == 0
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT pg_try_advisory_lock($1)", 7)
        assert pool.stats().session_resets == 1


async def test_a_change_hidden_in_a_function_needs_always(database_url: str, pg_schema: str) -> None:
    """The documented gap of "session": SQL text that does not show the change."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE FUNCTION {pg_schema}.sneaky() RETURNS int LANGUAGE sql AS "
                            "$$ SELECT set_config('statement_timeout', '777ms', false); SELECT 1 $$")
        for mode, expected in (("session", "777ms"), ("always", "0")):
            async with create_pool(database_url, min_size=1, max_size=1, reset=mode) as pool:  # type: ignore[arg-type]
                async with pool.acquire() as conn:
                    await conn.fetchval(f"SELECT {pg_schema}.sneaky()")
                async with pool.acquire() as conn:
                    assert await conn.fetchval("SHOW statement_timeout") == expected, mode
    finally:
        await admin.close()


def test_changes_session_reads_statement_starts() -> None:
    changing = ["SET statement_timeout = 5", "  set search_path to x", "SELECT 1; SET work_mem = '1MB'",
                "RESET ALL", "LISTEN chan", "SELECT set_config('a.b', 'c', false)", "select pg_advisory_lock(1)",
                "SELECT pg_try_advisory_lock_shared(1)", "CREATE TEMP TABLE t (x int)", "PREPARE p AS SELECT 1",
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "SET SESSION AUTHORIZATION bob"]
    plain = ["SELECT 1", "UPDATE t SET x = 1", "SET LOCAL work_mem = '1MB'", "SET TRANSACTION READ ONLY",
             "SELECT pg_advisory_xact_lock(1)", "INSERT INTO settings (reset) VALUES (1)", "BEGIN", "COMMIT"]
    assert [q for q in changing if not changes_session(q)] == []
    assert [q for q in plain if changes_session(q)] == []


def test_every_public_asyncpg_method_that_takes_sql_is_watched() -> None:
    takes_sql = sorted(name for name, method in inspect.getmembers(asyncpg.Connection, callable)
                       if not name.startswith("_")
                       and list(inspect.signature(method).parameters)[1:2] in (["query"], ["command"]))
    assert takes_sql == sorted(QUERY_METHODS), (
        f"asyncpg {asyncpg.__version__} Connection methods taking SQL are {takes_sql}: override each new one "
        "in perf.pool.session.SessionTrackingConnection and list it in QUERY_METHODS")
    assert [name for name in QUERY_METHODS if name not in vars(SessionTrackingConnection)] == []


async def test_each_query_method_notes_a_session_change(database_url: str) -> None:
    sql = "SELECT set_config('application_name', 'x', false)"
    calls = {
        "execute": lambda c: c.execute(sql), "fetch": lambda c: c.fetch(sql), "fetchval": lambda c: c.fetchval(sql),
        "fetchrow": lambda c: c.fetchrow(sql), "prepare": lambda c: c.prepare(sql),
        "executemany": lambda c: c.executemany("SELECT set_config('application_name', $1, false)", [("x",)]),
        "fetchmany": lambda c: c.fetchmany("SELECT set_config('application_name', $1, false)", [("x",)]),
        "copy_from_query": lambda c: c.copy_from_query(sql, output=io.BytesIO()),
    }
    conn = await asyncpg.connect(database_url, connection_class=SessionTrackingConnection)
    try:
        for name in QUERY_METHODS:
            conn.session_changed = False
            if name == "cursor":
                async with conn.transaction():
                    assert len([row async for row in conn.cursor(sql)]) == 1
            else:
                await calls[name](conn)
            assert conn.session_changed, name
    finally:
        await conn.close()


async def test_reset_names_the_modes_when_wrong(database_url: str) -> None:
    with pytest.raises(ValueError, match="reset must be one of 'none', 'session', 'always'"):
        create_pool(database_url, reset="full")  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_default_reset_leaves_nothing_to_the_next_borrower(database_url: str, case: Case) -> None:
    """One test per thing a borrower can leave on its session (perf.pool.demo_reset.CASES)."""
    default = create_pool(database_url).reset
    assert default == "always"
    async with scratch(database_url) as (schema, role):
        clean, seen = await observe(database_url, case, default, schema=schema, role=role)  # type: ignore[arg-type]
        _, leaked = await observe(database_url, case, "none", schema=schema, role=role)
    assert seen == clean, f"{case.name}: the next borrower saw {seen!r}, a new connection sees {clean!r}"
    assert leaked != clean, f"{case.name}: not a leak even without a reset; the case tests nothing"


async def test_session_mode_misses_exactly_what_its_docstring_says(database_url: str) -> None:
    table = await reset_guarantees(database_url, modes=("session",))
    missed = {name for name, verdict in table["session"].items() if verdict != "clean"}
    assert missed == {"SET inside a function", "set_config inside a function", "advisory lock inside a function",
                      "temporary table inside a function", "sequence state (nextval)"}, table

"""perf.db.ident: identifiers are quoted like PostgreSQL's quote_ident, or refused."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.ident import qualified, quote_ident


@pytest.mark.parametrize("name", ["plain", "Mixed Case", 'with "quotes"', "semi; DROP TABLE x --", "ünïcode"])
async def test_quoted_name_round_trips_through_postgres(pg_conn: asyncpg.Connection, name: str) -> None:
    await pg_conn.execute(f"CREATE TABLE {quote_ident(name)} (v int)")
    assert await pg_conn.fetchval("SELECT relname FROM pg_class WHERE relname = $1", name) == name
    assert await pg_conn.fetchval("SELECT quote_ident($1)", name) in (quote_ident(name), name)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        quote_ident("")
    with pytest.raises(ValueError, match="NUL"):
        quote_ident("a\x00b")
    with pytest.raises(ValueError, match="keeps only 63"):
        quote_ident("x" * 64)


def test_qualified() -> None:
    assert qualified("t", "s") == '"s"."t"'
    assert qualified('a"b') == '"a""b"'

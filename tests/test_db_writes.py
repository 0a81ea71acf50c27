"""perf.db.writes: every strategy writes exactly the rows; a bad batch rolls back alone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from perf.db.writes import STRATEGIES, BatchWriteError, insert_copy, insert_unnest

COLUMNS = ("id", "name", "price", "created_at", "note")
WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_rows(n: int) -> list[tuple]:
    return [(i, f"item {i}", Decimal(i).scaleb(-2), WHEN, None if i % 3 else f"n{i}") for i in range(n)]


@pytest.fixture
async def target(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    await pg_conn.execute(
        'CREATE TABLE "odd ""target"" table" (id bigint PRIMARY KEY, name text NOT NULL, '
        "price numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL, note text)"
    )
    return pg_conn


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_strategy_writes_exactly_the_rows(target: asyncpg.Connection, strategy: str) -> None:
    rows = make_rows(45)
    written = await STRATEGIES[strategy](target, 'odd "target" table', COLUMNS, rows, batch_size=10)
    assert written == 45
    got = await target.fetch('SELECT id, name, price, created_at, note FROM "odd ""target"" table" ORDER BY id')
    assert [tuple(r) for r in got] == rows


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_null_in_not_null_column_rolls_back_its_batch_only(target: asyncpg.Connection, strategy: str) -> None:
    rows = make_rows(30)
    rows[17] = (17, None, Decimal(1), WHEN, None)
    with pytest.raises(BatchWriteError) as info:
        await STRATEGIES[strategy](target, 'odd "target" table', COLUMNS, rows, batch_size=10)
    err = info.value
    assert isinstance(err.__cause__, asyncpg.NotNullViolationError)
    ids = [r["id"] for r in await target.fetch('SELECT id FROM "odd ""target"" table" ORDER BY id')]
    if strategy == "row_by_row":  # every row is its own batch
        assert (err.batch_index, err.first_row, err.rows_written) == (17, 17, 17)
        assert ids == list(range(17))
    else:
        assert (err.batch_index, err.first_row, err.last_row, err.rows_written) == (1, 10, 19, 10)
        assert ids == list(range(10))
    assert "rolled back" in str(err) and f"from row {err.first_row}" in str(err)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_wrong_type_fails_clearly_and_writes_nothing(target: asyncpg.Connection, strategy: str) -> None:
    rows = make_rows(5)
    rows[3] = (3, "x", "not a number", WHEN, None)
    with pytest.raises(BatchWriteError, match=r"batch \d+ \(rows \d+\.\.\d+\) failed"):
        await STRATEGIES[strategy](target, 'odd "target" table', COLUMNS, rows, batch_size=None)
    count = await target.fetchval('SELECT count(*) FROM "odd ""target"" table"')
    assert count == (3 if strategy == "row_by_row" else 0)
    # The connection is usable afterwards (no transaction left open).
    assert not target.is_in_transaction()


async def test_unnest_names_missing_columns(target: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match=r"columns \['nope'\] do not exist"):
        await insert_unnest(target, 'odd "target" table', ("id", "nope"), [(1, 2)])


async def test_bad_arguments_are_named(target: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="batch_size must be"):
        await insert_copy(target, 'odd "target" table', COLUMNS, make_rows(1), batch_size=0)
    with pytest.raises(ValueError, match="columns must be"):
        await insert_copy(target, 'odd "target" table', "id", make_rows(1))
    assert await insert_copy(target, 'odd "target" table', COLUMNS, []) == 0

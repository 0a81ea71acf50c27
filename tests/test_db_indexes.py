"""perf.db.indexes: create/drop with quoting, usage reports, before/after comparison."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.indexes import (
    compare_index,
    create_index,
    drop_index,
    flush_stats,
    list_indexes,
    seq_scan_heavy_tables,
    unused_indexes,
)

ODD_TABLE = 'we"ird table'
ODD_INDEX = 'idx "quoted"; DROP TABLE x --'


@pytest.fixture
async def odd(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    await pg_conn.execute('CREATE TABLE "we""ird table" (id int PRIMARY KEY, "Mixed Case" int, v text)')
    await pg_conn.execute(
        'INSERT INTO "we""ird table" SELECT g, g % 100, md5(g::text) FROM generate_series(1, 5000) g'
    )
    await pg_conn.execute('ANALYZE "we""ird table"')
    return pg_conn


async def test_create_and_drop_with_odd_identifiers(odd: asyncpg.Connection, pg_schema: str) -> None:
    name = await create_index(odd, ODD_TABLE, ["Mixed Case", "id"], name=ODD_INDEX)
    assert name == ODD_INDEX
    frame = await list_indexes(odd, table=ODD_TABLE)
    row = frame.set_index("index").loc[ODD_INDEX]
    assert row["table"] == ODD_TABLE and row["schema"] == pg_schema and bool(row["is_valid"])
    assert row["size_bytes"] > 0 and '("Mixed Case", id)' in row["definition"]
    await create_index(odd, ODD_TABLE, ["Mixed Case", "id"], name=ODD_INDEX)  # IF NOT EXISTS: no error
    await drop_index(odd, ODD_INDEX)
    await drop_index(odd, ODD_INDEX)  # IF EXISTS: no error
    assert ODD_INDEX not in set((await list_indexes(odd))["index"])


async def test_create_inside_transaction_falls_back_to_plain(odd: asyncpg.Connection) -> None:
    async with odd.transaction():
        name = await create_index(odd, ODD_TABLE, ["v"])
    assert name == 'we"ird table_v_idx'
    assert name in set((await list_indexes(odd))["index"])


async def test_failed_concurrent_unique_build_leaves_no_invalid_index(odd: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.UniqueViolationError):
        await create_index(odd, ODD_TABLE, ["Mixed Case"], name="dup_idx", unique=True)
    assert "dup_idx" not in set((await list_indexes(odd))["index"])


async def test_usage_reports(odd: asyncpg.Connection) -> None:
    used = await create_index(odd, ODD_TABLE, ["Mixed Case"], name="used_idx")
    unused = await create_index(odd, ODD_TABLE, ["v"], name="unused_idx")
    for i in range(3):
        await odd.fetch('SELECT id FROM "we""ird table" WHERE "Mixed Case" = $1', i)
        await odd.fetch('SELECT count(*) FROM "we""ird table" WHERE v LIKE $1', "%a%")
    await odd.execute("SET enable_seqscan = off")
    await odd.fetch('SELECT id FROM "we""ird table" WHERE "Mixed Case" = $1', 7)
    await odd.execute("RESET enable_seqscan")
    await flush_stats(odd)
    frame = (await list_indexes(odd)).set_index("index")
    assert frame.loc[used, "scans"] >= 1 and frame.loc[unused, "scans"] == 0
    names = list((await unused_indexes(odd))["index"])
    assert unused in names and used not in names and 'we"ird table_pkey' not in names
    heavy = await seq_scan_heavy_tables(odd, min_rows=1000)
    assert ODD_TABLE in set(heavy["table"])
    assert (await seq_scan_heavy_tables(odd, min_rows=1_000_000)).empty


async def test_compare_index_shows_the_plan_change(odd: asyncpg.Connection) -> None:
    effect = await compare_index(
        odd, 'SELECT id FROM "we""ird table" WHERE v = $1', "nope", table=ODD_TABLE, columns=["v"], repeat=3
    )
    assert effect.before.seq_scanned == [ODD_TABLE]
    assert effect.after.indexes_used == [effect.index]
    assert effect.speedup > 0
    assert effect.index not in set((await list_indexes(odd))["index"])  # dropped again (keep=False)


async def test_bad_columns_are_named(odd: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="columns must be"):
        await create_index(odd, ODD_TABLE, "v")

"""perf.db.reads: every chunked reader returns every row exactly once, in key order."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from perf.db.reads import READERS, chunk_timings, read_cursor, read_keyset, read_offset

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
async def events(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    # created_at has many ties, so only (created_at, id) is a unique key.
    await pg_conn.execute(
        'CREATE TABLE "ev""ents" (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text);'
        'CREATE INDEX ON "ev""ents" (created_at, id)'
    )
    await pg_conn.execute(
        "INSERT INTO \"ev\"\"ents\" SELECT g, $1::timestamptz + (g % 17) * interval '1 minute', 'b' || g "
        "FROM generate_series(1, 1000) g",
        T0,
    )
    return pg_conn


async def _ids(chunks) -> list[int]:
    return [row["id"] async for chunk in chunks for row in chunk]


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("chunk_size", [1, 64, 1000, 5000])
async def test_reader_returns_every_row_once_in_order(events: asyncpg.Connection, reader: str,
                                                      chunk_size: int) -> None:
    key = ("created_at", "id")
    expected = [r["id"] for r in await events.fetch('SELECT id FROM "ev""ents" ORDER BY created_at, id')]
    got = await _ids(READERS[reader](events, 'ev"ents', key=key, chunk_size=chunk_size))
    assert got == expected


async def test_keyset_survives_concurrent_inserts_offset_does_not(events: asyncpg.Connection, pg_connect) -> None:
    writer = await pg_connect()
    before = [r["id"] for r in await events.fetch('SELECT id FROM "ev""ents" ORDER BY created_at, id')]

    async def read_while_inserting(reader) -> list[int]:
        seen: list[int] = []
        async with aclosing(reader(events, 'ev"ents', key=("created_at", "id"), chunk_size=100)) as chunks:
            async for chunk in chunks:
                seen += [r["id"] for r in chunk]
                # A new row sorting BEFORE everything read so far shifts OFFSET pages by one.
                new_id = await writer.fetchval('SELECT max(id) + 1 FROM "ev""ents"')
                await writer.execute('INSERT INTO "ev""ents" VALUES ($1, $2, $3)', new_id, T0 - timedelta(days=1), "x")
        return seen

    keyset = await read_while_inserting(read_keyset)
    assert keyset == before  # each pre-existing row exactly once, in order; new rows sort before the cursor
    offset = await read_while_inserting(read_offset)
    assert len(offset) != len(set(offset))  # OFFSET read some rows twice


async def test_cursor_early_stop_ends_its_transaction(events: asyncpg.Connection) -> None:
    async with aclosing(read_cursor(events, 'ev"ents', chunk_size=10)) as chunks:
        async for _chunk in chunks:
            assert events.is_in_transaction()
            break
    assert not events.is_in_transaction()


async def test_arguments_are_validated(events: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="chunk_size must be"):
        await anext(read_keyset(events, 'ev"ents', chunk_size=0))
    with pytest.raises(ValueError, match="key must be"):
        await anext(read_offset(events, 'ev"ents', key="id"))
    with pytest.raises(ValueError, match="must include the key columns"):
        await anext(read_keyset(events, 'ev"ents', columns=("body",)))


async def test_chunk_timings_has_one_row_per_chunk(events: asyncpg.Connection) -> None:
    frame = await chunk_timings(read_keyset(events, 'ev"ents', chunk_size=300), label="keyset")
    assert list(frame["rows"]) == [300, 300, 300, 100]
    assert list(frame["page"]) == [0, 1, 2, 3] and (frame["seconds"] > 0).all()

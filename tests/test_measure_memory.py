"""Peak memory: tracemalloc sees what the work allocated; chunked reads hold one chunk, fetch-all every row."""

from __future__ import annotations

import asyncpg
import pytest

from perf.db.demo_memory import read_memory
from perf.db.schema import ensure_seeded
from perf.measure import peak_memory, peak_memory_async


def test_peak_memory_sees_a_large_allocation_and_returns_the_result() -> None:
    big = peak_memory(lambda: bytearray(32 * 2**20))
    small = peak_memory(lambda: bytearray(2**10))
    assert big.python_peak_mib >= 31 and len(big.result) == 32 * 2**20
    assert small.python_peak_bytes < 2**20  # 32x less: an effect far beyond noise
    assert big.rss_peak_mib >= 0


async def test_peak_memory_async_and_its_validation() -> None:
    async def work() -> int:
        data = [str(i) for i in range(200_000)]
        return len(data)
    peak = await peak_memory_async(work)
    assert peak.result == 200_000 and peak.python_peak_mib > 5
    with pytest.raises(ValueError, match="interval"):
        peak_memory(lambda: None, interval=0)
    with pytest.raises(TypeError, match="peak_memory_async"):
        peak_memory(work)  # type: ignore[arg-type]


async def test_fetch_all_grows_with_rows_while_chunked_reads_stay_flat(pg_conn: asyncpg.Connection) -> None:
    await ensure_seeded(pg_conn, products=20_000, categories=5, images_per_product=0)
    frame = await read_memory(pg_conn, sizes=[2_000, 20_000], chunk_size=500, repeat=1)
    assert (frame.rows_read == frame.rows).all()
    peak = frame.pivot_table(index="rows", columns="strategy", values="python_peak_mib")
    assert peak.loc[20_000, "fetch all"] >= 5 * peak.loc[2_000, "fetch all"]  # linear in rows
    for chunked in ("keyset chunks", "server-side cursor"):
        assert peak.loc[20_000, chunked] < peak.loc[20_000, "fetch all"] / 5  # flat: one chunk at a time
        with pytest.raises(ValueError, match="sizes"):
            await read_memory(pg_conn, sizes=[])

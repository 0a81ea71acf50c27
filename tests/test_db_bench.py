"""perf.bench.db: the benchmark runs end to end on a tiny table and judges its targets."""

from __future__ import annotations

import io

import pandas as pd

from perf.bench.db import report_inserts, report_paging, run
from perf.measure import Comparison


def _comparison(seconds: dict[str, float], baseline: str) -> Comparison:
    rows = [(name, rnd, value) for rnd in range(3) for name, value in seconds.items()]
    return Comparison(pd.DataFrame(rows, columns=["variant", "round", "seconds"]), baseline)


def test_report_inserts_judges_targets() -> None:
    out = io.StringIO()
    met = report_inserts(_comparison({"row_by_row": 1.0, "executemany": 0.05, "copy": 0.01}, "row_by_row"), 100,
                         out=out)
    assert met and "copy vs row_by_row: 100.0x (target >= 50x: MET)" in out.getvalue()
    missed = report_inserts(_comparison({"row_by_row": 1.0, "executemany": 0.5, "copy": 0.01}, "row_by_row"), 100,
                            out=io.StringIO())
    assert not missed


def test_report_paging_judges_targets() -> None:
    comparison = _comparison({"offset_first": 1.0, "offset_last": 5.0, "keyset_first": 1.0, "keyset_last": 2.0},
                             "offset_first")
    out = io.StringIO()
    assert not report_paging(comparison, {"offset": 5.0, "keyset": 2.0}, 1000, 10, out=out)
    assert "keyset growth last/first page: 2.00x (target <= 1.5: NOT MET)" in out.getvalue()


async def test_run_end_to_end(database_url: str, pg_schema: str) -> None:
    out = io.StringIO()
    await run(database_url, products=500, rows=40, rounds=1, limit=20, schema=pg_schema, out=out)
    text = out.getvalue()
    for line in ("seeded 500 products", "copy vs row_by_row", "OFFSET growth", "keyset growth", "N+1 (101 queries)"):
        assert line in text

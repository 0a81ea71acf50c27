"""PostgreSQL techniques: the product schema, batch writes, chunked reads, EXPLAIN, indexes, queries.

The names a notebook uses are offered here (``from perf.db import ensure_seeded, insert_copy``),
loaded on first use. :func:`explain` lives in :mod:`perf.db.plans` (a front-door name the same as
a submodule's would be replaced by the module once that is imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.db.demo_memory import read_memory
    from perf.db.demo_race import PRODUCT_COLUMNS, page_growth, page_profile, product_rows, race_inserts
    from perf.db.indexes import (
        compare_index,
        create_index,
        drop_index,
        flush_stats,
        list_indexes,
        seq_scan_heavy_tables,
        unused_indexes,
    )
    from perf.db.plans import ExplainResult, explain
    from perf.db.queries import (
        count_products,
        get_products,
        get_products_n_plus_one,
        list_page,
        list_page_concurrent,
        list_products_keyset,
    )
    from perf.db.schema import ensure_seeded
    from perf.db.writes import BatchWriteError, insert_copy

# The other names a notebook uses (apparatus included), imported on first use: a process that
# imports one module of this package (the API server, a worker) pays for none of them.
_LAZY = {
    "read_memory": "perf.db.demo_memory",
    "PRODUCT_COLUMNS": "perf.db.demo_race",
    "page_growth": "perf.db.demo_race",
    "page_profile": "perf.db.demo_race",
    "product_rows": "perf.db.demo_race",
    "race_inserts": "perf.db.demo_race",
    "compare_index": "perf.db.indexes",
    "create_index": "perf.db.indexes",
    "drop_index": "perf.db.indexes",
    "flush_stats": "perf.db.indexes",
    "list_indexes": "perf.db.indexes",
    "seq_scan_heavy_tables": "perf.db.indexes",
    "unused_indexes": "perf.db.indexes",
    "count_products": "perf.db.queries",
    "get_products": "perf.db.queries",
    "get_products_n_plus_one": "perf.db.queries",
    "list_page": "perf.db.queries",
    "list_page_concurrent": "perf.db.queries",
    "list_products_keyset": "perf.db.queries",
    "ExplainResult": "perf.db.plans",
    "explain": "perf.db.plans",
    "ensure_seeded": "perf.db.schema",
    "BatchWriteError": "perf.db.writes",
    "insert_copy": "perf.db.writes",
}
__all__ = [
    "BatchWriteError", "ExplainResult", "PRODUCT_COLUMNS", "compare_index", "count_products", "create_index",
    "drop_index", "ensure_seeded", "explain", "flush_stats", "get_products", "get_products_n_plus_one",
    "insert_copy", "list_indexes", "list_page", "list_page_concurrent", "list_products_keyset", "page_growth",
    "page_profile", "product_rows", "race_inserts", "read_memory", "seq_scan_heavy_tables", "unused_indexes",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

"""PostgreSQL techniques: the product schema, batch writes, chunked reads, EXPLAIN, indexes, queries.

Import from the submodules by full path (``from perf.db.schema import create_schema``).
"""

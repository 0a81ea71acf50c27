"""pgqueuer's unexported names, for :mod:`perf.queue.durable` (checked against pgqueuer 1.6.0, the pin).

A queue per PostgreSQL schema (the API's, each test's) needs pgqueuer's tables and its
``NOTIFY`` channel named per schema. pgqueuer reads those names from ``DBSettings``, a
settings object filled from ``PGQUEUER_*`` environment variables by default; an instance
with the names given outright reaches its queries only through the query builders
``QueryBuilderEnvironment`` and ``QueryQueueBuilder``. None of the three is exported
(``pgqueuer/__init__``, ``pgqueuer.models``, ``pgqueuer.types`` name none of them): they live
in ``pgqueuer.domain.settings`` and ``pgqueuer.adapters.persistence.qb``.
:class:`SchemaQueries` is the one place that builds them.
"""

from __future__ import annotations

import asyncpg
from pgqueuer import AsyncpgDriver, Queries
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment, QueryQueueBuilder
from pgqueuer.domain.settings import DBSettings
from pgqueuer.models import Channel

__all__ = ["SchemaQueries"]

#: The pgqueuer version these names were checked against (``requirements.txt``).
CHECKED = "1.6.0"


class SchemaQueries:
    """pgqueuer's ``Queries`` for the tables in ``schema``, waking workers on ``channel``.

    >>> queries = SchemaQueries("api")
    >>> queries.channel, queries.queue_table
    ('pgqueuer_api', 'pgqueuer')
    """

    def __init__(self, schema: str) -> None:
        settings = DBSettings(db_schema=schema.lower(), channel=Channel(f"pgqueuer_{schema.lower()}"))
        self.channel = Channel(settings.channel)
        #: The job table's name (unqualified: queries run with ``search_path`` set to the schema).
        self.queue_table: str = settings.queue_table
        self.environment = QueryBuilderEnvironment(settings=settings)
        self.queue = QueryQueueBuilder(settings=settings)

    def on(self, conn: asyncpg.Connection) -> Queries:
        """pgqueuer's queries over ``conn`` (one connection, not a pool)."""
        return Queries(AsyncpgDriver(conn), qbe=self.environment, qbq=self.queue)

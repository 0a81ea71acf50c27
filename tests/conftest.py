"""Shared fixtures: real PostgreSQL and Redis, each test in a namespace of its own.

* ``services`` (session): the embedded pair (reused when ``python -m perf services up``
  already runs one) or the servers named by DATABASE_URL / REDIS_URL.
* ``database_url`` / ``redis_url`` (session): their URLs; a user's keys in every Redis database
  must survive the session (``tests/_sentinels.py``).
* ``pg_schema`` (function): a fresh schema, dropped afterwards.
* ``pg_connect`` (function): ``await pg_connect()`` opens an asyncpg connection whose
  ``search_path`` is that schema; every connection it opened is closed afterwards.
* ``pg_conn`` (function): one such connection.
* ``redis_prefix`` (function): a unique key prefix; keys under it are deleted afterwards.
* ``redis_client`` (function): a ``redis.asyncio.Redis`` client, closed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from perf.config import get_settings
from perf.services import ServiceHandle, ensure_services
from tests._sentinels import RedisSentinels
from tests._tiers import SLOW_SECONDS, starts_a_process


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceHandle]:
    with ensure_services(get_settings()) as handle:
        if handle.started:
            print(f"\n[perf] embedded PostgreSQL + Redis started in {handle.startup_seconds:.2f}s")
        yield handle


@pytest.fixture(scope="session")
def database_url(services: ServiceHandle) -> str:
    return services.database_url


@pytest.fixture(scope="session")
def redis_url(services: ServiceHandle) -> Iterator[str]:
    """The Redis URL; the session fails if its tests deleted keys they did not write (tests/_sentinels.py)."""
    sentinels = RedisSentinels(services.redis_url).write()
    yield services.redis_url
    sentinels.check()


@pytest.fixture
async def pg_schema(database_url: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


@pytest.fixture
async def pg_connect(database_url: str, pg_schema: str) -> AsyncIterator[Callable[..., Awaitable[asyncpg.Connection]]]:
    opened: list[asyncpg.Connection] = []

    async def connect(**kwargs: object) -> asyncpg.Connection:
        settings = {"search_path": pg_schema, **kwargs.pop("server_settings", {})}  # type: ignore[dict-item]
        conn = await asyncpg.connect(database_url, server_settings=settings, **kwargs)
        opened.append(conn)
        return conn

    try:
        yield connect
    finally:
        for conn in opened:
            if not conn.is_closed():
                await conn.close()


@pytest.fixture
async def pg_conn(pg_connect: Callable[..., Awaitable[asyncpg.Connection]]) -> asyncpg.Connection:
    return await pg_connect()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.from_url(redis_url)
    try:
        batch = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


# -- tiers, timeouts and order -----------------------------------------------------------------

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that starts a process or runs a notebook cell (see ``tests/_tiers.py``);
    a notebook cell may run as long as nbval's own cell timeout allows."""
    cell_timeout = float(config.getoption("nbval_cell_timeout", None) or 600)
    for item in items:
        if starts_a_process(item):
            item.add_marker(pytest.mark.slow)
        if item.nodeid.split("::", 1)[0].endswith(".ipynb"):
            item.add_marker(pytest.mark.timeout(cell_timeout + 30))


class NotebookCellOrder:
    """Random order (pytest-randomly) shuffles test modules and the tests inside them, and nbval's
    cells with them (they have no module to keep them together). A notebook's cells are one program
    in one kernel: after the shuffle, each notebook's cells run together and top to bottom, at the
    place its first cell was shuffled to."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        cells: dict[str, list[pytest.Item]] = {}
        for item in items:
            path = item.nodeid.split("::", 1)[0]
            if path.endswith(".ipynb"):
                cells.setdefault(path, []).append(item)
        if not cells:
            return
        ordered: list[pytest.Item] = []
        placed: set[str] = set()
        for item in items:
            path = item.nodeid.split("::", 1)[0]
            if path not in cells:
                ordered.append(item)
            elif path not in placed:
                placed.add(path)
                ordered += sorted(cells[path], key=_cell_index)
        items[:] = ordered


def _cell_index(item: pytest.Item) -> int:
    """nbval names a cell ``Cell N``."""
    return int(item.name.rsplit(" ", 1)[-1])


class SlowReport:
    """At the end of a run: how many tests the fast tier left out, and any unmarked test over 5 s
    (listed only in a run in one process: beside other workers a test's wall time is not its own)."""

    def __init__(self, *, parallel: bool) -> None:
        self.parallel = parallel
        self.seconds: dict[str, float] = {}
        self.slow_ids: set[str] = set()
        self.deselected = 0

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += sum(1 for item in items if item.get_closest_marker("slow"))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.slow_ids |= {item.nodeid for item in items if item.get_closest_marker("slow")}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if "slow" in report.keywords:  # under xdist the workers collect: their reports carry the marker
            self.slow_ids.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.deselected:
            terminalreporter.write_line(f"fast tier: {self.deselected} slow tests left for the full tier "
                                        "(python3 tasks.py test)")
        unmarked = sorted(((s, nodeid) for nodeid, s in self.seconds.items()
                           if s > SLOW_SECONDS and nodeid not in self.slow_ids), reverse=True)
        if unmarked and self.parallel:
            terminalreporter.write_line(f"{len(unmarked)} tests that are not slow took over {SLOW_SECONDS:g}s "
                                        "beside other workers; a run in one process (python3 tasks.py test "
                                        "--fast) lists any that are slow on their own")
        elif unmarked:
            terminalreporter.write_sep("-", f"{len(unmarked)} tests took over {SLOW_SECONDS:g}s but are not slow: "
                                            "add the name that starts their process to tests/_tiers.py")
            for seconds, nodeid in unmarked:
                terminalreporter.write_line(f"{seconds:6.1f}s {nodeid}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(NotebookCellOrder(), "perf-notebook-cell-order")
    parallel = bool(config.getoption("numprocesses", None))  # pytest-xdist's -n
    config.pluginmanager.register(SlowReport(parallel=parallel), "perf-slow-report")

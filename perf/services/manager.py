"""Bring up the PostgreSQL and Redis pair the workbook uses, once per machine session.

* With ``DATABASE_URL`` / ``REDIS_URL`` set, those servers are used and nothing starts.
* Otherwise an embedded pair lives under ``settings.state_dir``, described by a
  state file. Whoever needs services calls :func:`ensure_services`: it reuses a
  running pair (so five notebooks share one) or starts one.
* A pair started by ``python -m perf services up`` is *persistent*: it runs until
  ``down``. A pair started implicitly (a notebook, a test run) is stopped when
  the last process using it closes its handle or dies: a detached watchdog
  process watches the users' PIDs, so a killed kernel leaves no orphans.
* A pair started from other binaries (an older workbook's PostgreSQL 16 and
  Redis 6.2) is replaced, with a message, once nobody uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from perf.config import Settings, get_settings
from perf.services.binaries import postgres_bin_dir, redis_server_path
from perf.services.postgres_server import EmbeddedPostgres
from perf.services.process import pid_alive, port_open
from perf.services.redis_server import EmbeddedRedis

STATE_FILE = "services.json"


@dataclass
class ServiceHandle:
    """The DSN and Redis URL to use, and whether this process must stop them on close.

    Close it (or use ``with``) when done: an implicitly started embedded pair
    stops when its last user closes.
    """

    database_url: str
    redis_url: str
    embedded_postgres: bool = False
    embedded_redis: bool = False
    started: bool = False          # True when this call started the embedded pair
    startup_seconds: float = 0.0   # how long starting took (0 when reused or external)
    servers: str = ""              # what runs, e.g. "PostgreSQL 18.6 + Valkey 9.1.2 (Redis protocol)"
    state_dir: Path | None = None
    token: str = ""                # this handle's entry in the state file's user list
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Detach this process; stop the embedded pair if nobody else uses it and it is not persistent."""
        if self._closed:
            return
        self._closed = True
        if self.state_dir is not None:
            _release(self.state_dir, self.token)

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> ServiceHandle:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


# -- state file, guarded by an flock so concurrent notebooks agree ----------
@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_dir / STATE_FILE)


def _servers(state_dir: Path, state: dict[str, Any] | None = None) -> tuple[EmbeddedPostgres, EmbeddedRedis]:
    """The pair described by ``state`` (its ports and, to stop it, its own binaries), or a new one."""
    if state is None:
        return EmbeddedPostgres(state_dir / "postgres"), EmbeddedRedis(state_dir / "redis")
    pg_bin = state["postgres"].get("binaries")
    return (EmbeddedPostgres(state_dir / "postgres", port=state["postgres"]["port"],
                             bin_dir=Path(pg_bin) if pg_bin else None),
            EmbeddedRedis(state_dir / "redis", port=state["redis"]["port"]))


def _servers_line(state: dict[str, Any]) -> str:
    return f"{state['postgres']['version']} + {state['redis']['version']}"


def _other_binaries(state: dict[str, Any]) -> bool:
    """True when the running pair was started from other binaries than this workbook would use."""
    recorded = (state["postgres"].get("binaries"), state["redis"].get("binary"))
    return recorded != (str(postgres_bin_dir()), str(redis_server_path()))


def _alive(state_dir: Path, state: dict[str, Any]) -> bool:
    pg, redis = _servers(state_dir, state)
    return (pg.pid is not None and redis.pid is not None
            and port_open(pg.port or 0) and port_open(redis.port or 0))


def _stop_pair(state_dir: Path, state: dict[str, Any] | None) -> None:
    pg, redis = _servers(state_dir, state)
    redis.stop()
    pg.stop()
    (state_dir / STATE_FILE).unlink(missing_ok=True)


def _start_pair(state_dir: Path, *, persistent: bool) -> dict[str, Any]:
    pg, redis = _servers(state_dir)
    # Leftovers of a crashed run (state file gone, servers still up) would hold the data dirs.
    pg.stop()
    redis.stop()
    t0 = time.perf_counter()
    try:
        pg.start()
        redis.start()
    except BaseException:
        redis.stop()
        pg.stop()
        raise
    return {
        "postgres": {"port": pg.port, "url": pg.url, "pid": pg.pid, "version": pg.version(),
                     "binaries": str(pg.bin_dir)},
        "redis": {"port": redis.port, "url": redis.url, "pid": redis.pid, "version": redis.version(),
                  "binary": str(redis.server_path)},
        "persistent": persistent,
        "users": [],
        "started_at": time.time(),
        "startup_seconds": round(time.perf_counter() - t0, 3),
    }


def _spawn_watchdog(state_dir: Path) -> None:
    # Through `sh -c '... &'` so the watchdog is re-parented to init at once: it outlives
    # a killed test run or kernel, and we hold no Popen object for a still-running child.
    subprocess.run(
        ["/bin/sh", "-c", '"$0" -m perf.services.watchdog "$1" </dev/null >/dev/null 2>&1 &',
         sys.executable, str(state_dir)],
        check=True, start_new_session=True,
    )


def _user_pid(token: str) -> int:
    return int(token.split("/", 1)[0])


def _live_users(state: dict[str, Any], *, without: str | None = None) -> list[str]:
    """Users (``"pid/uuid"`` tokens: one per handle) whose process still runs."""
    return [u for u in state["users"] if u != without and pid_alive(_user_pid(u))]


def _release(state_dir: Path, token: str) -> None:
    with _locked(state_dir):
        state = _read_state(state_dir)
        if state is None:
            return
        state["users"] = _live_users(state, without=token)
        if state["users"] or state["persistent"]:
            _write_state(state_dir, state)
        else:
            _stop_pair(state_dir, state)


def reap_if_unused(state_dir: Path) -> bool:
    """Stop an implicitly started pair whose users have all exited. Returns True when none is left running."""
    with _locked(state_dir):
        state = _read_state(state_dir)
        if state is None:
            return True
        if state["persistent"]:
            return True  # someone ran `services up`; it is theirs now
        state["users"] = _live_users(state)
        if state["users"]:
            _write_state(state_dir, state)
            return False
        _stop_pair(state_dir, state)
        return True


def ensure_services(settings: Settings | None = None, *, persistent: bool = False) -> ServiceHandle:
    """Return URLs of a PostgreSQL and a Redis server, starting an embedded pair if needed.

    External servers from ``DATABASE_URL``/``REDIS_URL`` are used as they are.
    An embedded pair already running under ``settings.state_dir`` is reused.
    ``persistent=True`` (what ``python -m perf services up`` does) keeps the pair
    running after this process exits, until ``python -m perf services down``.
    """
    settings = settings or get_settings()
    if not settings.embedded:
        return ServiceHandle(database_url=settings.database_url or "", redis_url=settings.redis_url or "")

    state_dir = settings.state_dir
    token = f"{os.getpid()}/{uuid.uuid4().hex[:8]}"
    with _locked(state_dir):
        state = _read_state(state_dir)
        started = False
        if state is not None and _alive(state_dir, state) and _other_binaries(state):
            if _live_users(state):
                print(f"[perf] reusing the running {_servers_line(state)} (other binaries than this workbook's): "
                      "it is replaced once its users exit, or now with `python -m perf services down`.",
                      file=sys.stderr, flush=True)
            else:
                print(f"[perf] the running embedded pair ({_servers_line(state)}) comes from other binaries than "
                      "this workbook's: stopping it and starting the current servers.", file=sys.stderr, flush=True)
                _stop_pair(state_dir, state)
                state = None
        if state is None or not _alive(state_dir, state):
            state = _start_pair(state_dir, persistent=persistent)
            started = True
        if persistent:
            state["persistent"] = True
        else:
            state["users"] = [*_live_users(state), token]
        _write_state(state_dir, state)
    if started and not persistent:
        _spawn_watchdog(state_dir)
    return ServiceHandle(
        database_url=settings.database_url or state["postgres"]["url"],
        redis_url=settings.redis_url or state["redis"]["url"],
        embedded_postgres=settings.database_url is None,
        embedded_redis=settings.redis_url is None,
        started=started,
        startup_seconds=state["startup_seconds"] if started else 0.0,
        servers=_servers_line(state),
        state_dir=None if persistent else state_dir,
        token=token,
    )


def services_status(settings: Settings | None = None) -> dict[str, Any]:
    """What runs now: mode (external/embedded), URLs, PIDs, versions, users. Starts nothing."""
    settings = settings or get_settings()
    if not settings.embedded:
        return {"mode": "external", "running": True,
                "postgres": {"url": settings.database_url}, "redis": {"url": settings.redis_url}}
    state = _read_state(settings.state_dir)
    if state is None:
        return {"mode": "embedded", "running": False, "state_dir": str(settings.state_dir)}
    running = _alive(settings.state_dir, state)
    state["users"] = _live_users(state)
    return {"mode": "embedded", "running": running, "state_dir": str(settings.state_dir),
            "servers": _servers_line(state),
            "uptime_seconds": round(time.time() - state["started_at"], 1), **state}


def stop_services(settings: Settings | None = None) -> dict[str, Any] | None:
    """Stop the embedded pair whoever started it; return the state it had (None when nothing ran)."""
    settings = settings or get_settings()
    if not settings.embedded:
        return None
    with _locked(settings.state_dir):
        state = _read_state(settings.state_dir)
        _stop_pair(settings.state_dir, state)
    return state

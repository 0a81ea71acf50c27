"""A throwaway Redis-protocol server (Valkey or Redis) in a directory of our own (no persistence, loopback only)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from perf.services.binaries import ServiceUnavailable, redis_server_path, server_version
from perf.services.embedded import EmbeddedServer
from perf.services.process import pid_alive, port_open, read_pid, terminate, wait_until


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis(EmbeddedServer):
    """One ``valkey-server`` (or ``redis-server``) process keeping its pid file and log in ``data_dir``.

    Valkey is the Linux Foundation's fork of Redis 7.2: same protocol and commands, so
    redis-py talks to it unchanged. :meth:`version` says which server runs.

    ``stop()``/``start()`` keep the same port, so clients can practise failing
    open and recovering. Usable as a (sync) context manager.

    Memory is bounded: ``maxmemory`` (default 1 GiB) with ``maxmemory_policy`` (default
    ``volatile-lru``: only keys with a TTL are evicted). The workbook's cache gives every key
    a TTL except its invalidation sequence and namespace version, and a lost tag version
    costs a miss, never a stale read (:mod:`perf.cache.redis_cache`); keys without a TTL
    (the key-walk demo's) are never evicted, so a server full of them refuses writes (the
    cache then fails open) rather than dropping them.
    """

    product = "Redis"

    def __init__(self, data_dir: Path | str, *, port: int | None = None,
                 server_path: Path | None = None, maxmemory: str = "1gb",
                 maxmemory_policy: str = "volatile-lru") -> None:
        super().__init__(data_dir, port=port)
        if not maxmemory[:1].isdigit():
            raise ValueError(f"maxmemory={maxmemory!r} must be a size such as '1gb' or '256mb'")
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.pid_file = self.base_dir / "redis.pid"
        self.log_file = self.base_dir / "redis.log"
        self._server_path = server_path

    @property
    def server_path(self) -> Path:
        if self._server_path is None:
            self._server_path = redis_server_path()
        return self._server_path

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        if self.port is None:
            raise RuntimeError("EmbeddedRedis has no port yet: call start() first")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """PID of the server, or None when it is not running."""
        pid = read_pid(self.pid_file)
        return pid if pid_alive(pid) else None

    def start(self, *, timeout: float = 20) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        self._refuse_if_running()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        port = self._claim_port()
        self.pid_file.unlink(missing_ok=True)
        cmd = [str(self.server_path), "--port", str(port), "--bind", "127.0.0.1",
               "--dir", str(self.base_dir), "--daemonize", "yes", "--pidfile", str(self.pid_file),
               "--logfile", str(self.log_file), "--save", "", "--appendonly", "no",
               "--protected-mode", "no", "--maxmemory", self.maxmemory,
               "--maxmemory-policy", self.maxmemory_policy, *self._debug_option()]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
        if result.returncode != 0 or not wait_until(lambda: _answers_ping(port), timeout=timeout, interval=0.01):
            log_tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise ServiceUnavailable(
                f"{self.server_path.name} did not come up on port {port}: {result.stderr.strip()}\n"
                f"Log {self.log_file}:\n{log_tail}"
            )
        wait_until(lambda: self.pid is not None, timeout=timeout)
        return self.url

    def _debug_option(self) -> list[str]:
        """Allow DEBUG (the fault demos' ``DEBUG SLEEP``) from loopback: Redis >= 7 and Valkey forbid it by default."""
        name, _, version = server_version(self.server_path).partition(" ")
        major = int(version.split(".")[0]) if version[:1].isdigit() else 0
        return ["--enable-debug-command", "local"] if name == "Valkey" or major >= 7 else []

    def stop(self, *, timeout: float = 10) -> None:
        """Terminate the server (no data is kept); no-op when stopped."""
        pid = self.pid
        if pid is None:
            return
        terminate(pid, timeout=timeout)
        wait_until(lambda: not port_open(self.port or 0), timeout=timeout)
        self.pid_file.unlink(missing_ok=True)

    def version(self) -> str:
        """Server and version of the binary in use: ``Valkey 9.1.2 (Redis protocol)`` or ``Redis 7.2.4``."""
        name = server_version(self.server_path)
        return f"{name} (Redis protocol)" if name.startswith("Valkey") else name

"""A throwaway PostgreSQL server in a directory of our own, run with ``initdb``/``pg_ctl``.

PostgreSQL refuses to run as root, so when we are root the server runs as a
dedicated system user (created on first use). A data directory left by another
major version (e.g. PostgreSQL 16 from an older workbook) cannot be opened by
these binaries: it is replaced, with a message, since the embedded data is throwaway.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

from perf.services.binaries import ServiceUnavailable, postgres_bin_dir, server_version
from perf.services.embedded import EmbeddedServer
from perf.services.process import pid_alive, port_open, read_pid, terminate, wait_until

#: System user the server runs as when the workbook runs as root.
ROOT_SERVICE_USER = "perfpg"


def _ensure_system_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        try:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                           check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ServiceUnavailable(
                f"PostgreSQL cannot run as root and creating the system user {name!r} failed "
                f"({exc}). Run the workbook as a normal user, or set DATABASE_URL."
            ) from exc


def _make_traversable(path: Path) -> None:
    """Let the server user reach ``path`` (binaries, data): add o+x to every parent directory."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IROTH)


class EmbeddedPostgres(EmbeddedServer):
    """One PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1 only.

    ``start()`` runs ``initdb`` the first time and then ``pg_ctl start``; ``stop()``
    shuts it down (fast mode) and ``restart()`` does both, keeping the port, so
    clients can practise reconnecting. Usable as a (sync) context manager.
    """

    product = "PostgreSQL"

    def __init__(self, data_dir: Path | str, *, port: int | None = None,
                 max_connections: int = 200, bin_dir: Path | None = None) -> None:
        if max_connections < 5:
            raise ValueError(f"max_connections must be at least 5, got {max_connections!r}")
        super().__init__(data_dir, port=port)
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.max_connections = max_connections
        self._bin_dir = bin_dir
        self._user = ROOT_SERVICE_USER if os.geteuid() == 0 else None

    # -- paths and commands -------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = postgres_bin_dir()
        return self._bin_dir

    @property
    def url(self) -> str:
        """DSN for the ``postgres`` superuser (trust auth on loopback)."""
        if self.port is None:
            raise RuntimeError("EmbeddedPostgres has no port yet: call start() first")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """PID of the postmaster, or None when it is not running."""
        pid = read_pid(self.data_dir / "postmaster.pid")
        return pid if pid_alive(pid) else None

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        try:
            # Drop group root as well as user root: with gid 0 the directories' group bits
            # (often ---) would apply instead of the o+x we granted.
            return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout,
                                  cwd=self.base_dir, user=self._user, group=self._user,
                                  extra_groups=None if self._user is None else [])
        except subprocess.CalledProcessError as exc:
            log_tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise ServiceUnavailable(
                f"`{' '.join(args)}` failed (exit {exc.returncode}): {exc.stderr.strip() or exc.stdout.strip()}\n"
                f"Server log {self.log_file}:\n{log_tail}"
            ) from exc

    # -- lifecycle ----------------------------------------------------------
    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _ensure_system_user(self._user)
            shutil.chown(self.base_dir, self._user)
            _make_traversable(self.base_dir)
            _make_traversable(self.bin_dir)
        self._replace_other_major()
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)  # a half-finished initdb from an interrupted run
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync", timeout=120)

    def major_version(self) -> str:
        """Major version of the binaries in use (``"18"``): a data directory only opens with the same one."""
        return self.version().removeprefix("PostgreSQL ").split(".")[0]

    def _replace_other_major(self) -> None:
        try:
            found = (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return
        if found == self.major_version():
            return
        print(f"[perf] {self.data_dir} holds a PostgreSQL {found} cluster (left by an older workbook); "
              f"this workbook runs {self.version()}, which cannot open it. Replacing it with a new empty "
              "cluster: the embedded data is throwaway and every notebook recreates its tables.",
              file=sys.stderr, flush=True)
        shutil.rmtree(self.data_dir)

    def start(self, *, timeout: float = 60) -> str:
        """Initialise (first time) and start the server; return its DSN."""
        self._refuse_if_running()
        self._prepare()
        port = self._claim_port()
        options = " ".join([
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            f"-c max_connections={self.max_connections}",
            "-c track_io_timing=on",
        ])
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-o", options, "-w", "-t", str(int(timeout)), timeout=timeout + 10)
        if not wait_until(lambda: port_open(port), timeout=timeout):
            raise ServiceUnavailable(f"PostgreSQL started but port {port} never opened; see {self.log_file}")
        return self.url

    def stop(self, *, timeout: float = 30) -> None:
        """Shut the server down (fast mode: roll back open transactions); no-op when stopped."""
        pid = self.pid
        if pid is None:
            return
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
                      "-t", str(int(timeout)), timeout=timeout + 10)
        except (ServiceUnavailable, subprocess.TimeoutExpired, OSError):
            # pg_ctl failed or is gone (binaries of an older workbook): SIGINT is a fast shutdown.
            terminate(pid, timeout=5, sig=signal.SIGINT)
        wait_until(lambda: not pid_alive(pid), timeout=5)

    def version(self) -> str:
        """Version of the binaries in use, e.g. ``PostgreSQL 18.6``."""
        return server_version(self.bin_dir / "postgres")

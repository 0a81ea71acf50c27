"""Small process and port helpers shared by the embedded servers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` names a live (non-zombie) process."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    import psutil  # portable (Linux /proc, macOS sysctl); imported here as the services CLI starts fast

    try:  # a zombie is dead for our purposes
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


async def freeze(pid: int, seconds: float) -> None:
    """Stop process ``pid`` (``SIGSTOP``) for ``seconds``, then let it go on (``SIGCONT``), even if cancelled.

    A frozen server keeps its sockets open and answers nothing: the fault a long GC pause, a
    swapped-out host or a stuck disk looks like from outside, unlike a crash (connections refused).
    """
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def terminate(pid: int, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` (SIGTERM) to ``pid``, wait up to ``timeout`` seconds, then SIGKILL it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_processes(*procs: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM every one of ``procs`` still running, give them ``timeout`` seconds together to
    exit, then SIGKILL what remains; returns once all have been reaped (no zombie left)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_pid(path: Path) -> int | None:
    """First line of a pid file as an int, or None when absent or unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)

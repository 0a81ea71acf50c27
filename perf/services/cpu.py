"""Which cores this process may use, pinning a process to some of them, and a process's CPU time.

The machine and process facts a measurement rests on: :class:`~perf.services.server_process.ServerProcess`
pins the servers it starts and reads their CPU time; :mod:`perf.measure` names the cores a
figure was measured on; a benchmark or notebook splits the cores between the server and
its load generator (:func:`split_cores`) and pins itself (:func:`pin_process`).

They live on the lowest floor that needs them (services), so everything above imports
them from here and nothing here imports upward.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PROC", "pin_process", "process_cpu_seconds", "split_cores", "usable_cores"]

log = logging.getLogger(__name__)

#: Linux's per-process files: per-thread CPU time in nanoseconds. Elsewhere (macOS) psutil answers.
PROC = Path("/proc")
_told_no_pinning = False

#: The cores this process could use when perf was imported. A benchmark pins *itself* (the
#: load generator) off the server's cores, and the server starts after that: asking the
#: process's affinity then would offer only the generator's cores (the server was left on
#: the generator's core, silently, until this was remembered).
_CORES_AT_START: frozenset[int] = frozenset(os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ())


def usable_cores() -> set[int]:
    """The cores this process may use or hand to its children (also after it pinned itself)."""
    if not hasattr(os, "sched_getaffinity"):
        return set(range(os.cpu_count() or 1))
    return set(_CORES_AT_START) | set(os.sched_getaffinity(0))


def current_affinity() -> set[int] | None:
    """The cores this process runs on now, to hand back after pinning; None where the platform cannot say
    (macOS, Windows: no ``os.sched_getaffinity``, and nothing was pinned either)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def pin_process(pid: int, cpus: Iterable[int]) -> bool:
    """Pin ``pid`` to the usable subset of ``cpus``; False when the platform or cores do not allow it."""
    wanted = set(cpus) & usable_cores()
    if not hasattr(os, "sched_setaffinity"):
        _tell_no_pinning()
        return False
    if not wanted:
        return False
    try:
        os.sched_setaffinity(pid, wanted)
    except OSError:
        return False
    return True


def _tell_no_pinning() -> None:
    """Say once per process that this platform cannot pin (macOS, Windows): numbers stay valid side by side."""
    global _told_no_pinning
    if not _told_no_pinning:
        _told_no_pinning = True
        log.warning("CPU pinning is not available on %s: the server and the load generator share every core, "
                    "so compare figures side by side in one run (ratios), not with a pinned Linux run", sys.platform)


def split_cores() -> tuple[set[int], set[int]]:
    """(server cores, generator cores): halves of the usable cores; both all of them on one core."""
    cores = sorted(usable_cores())
    if len(cores) < 2:
        return set(cores), set(cores)
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def process_cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used so far, all threads (Linux: ns-resolution schedstat; else psutil's
    user + system time, at the clock tick's resolution)."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in (PROC / str(pid) / "task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)

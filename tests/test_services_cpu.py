"""perf.services.cpu: the cores a measurement may use, pinning, a process's CPU time (Linux and elsewhere)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from perf.measure import machine_info
from perf.services import cpu, server_process


def test_the_old_home_and_the_front_door_offer_the_same_functions() -> None:
    """Notebooks import split_cores and pin_process from perf.services.server_process: it keeps offering them."""
    import perf.services

    for name in ("usable_cores", "pin_process", "split_cores", "process_cpu_seconds"):
        assert getattr(server_process, name) is getattr(cpu, name) is getattr(perf.services, name)


def test_a_process_pinned_to_the_generator_cores_still_pins_a_server_elsewhere() -> None:
    """A benchmark pins itself (the generator) first, then starts the server: the server must not land
    on the generator's cores. (It did: the usable cores were read from the already-pinned process.)"""
    import json
    import subprocess
    import sys

    script = (
        "import json, os, subprocess\n"
        "from perf.services.cpu import pin_process, split_cores\n"
        "from perf.measure import machine_info\n"
        "server, generator = split_cores()\n"
        "pinned_self = pin_process(os.getpid(), generator)\n"
        "child = subprocess.Popen(['sleep', '5'])\n"
        "pinned_child = pin_process(child.pid, server)\n"
        "out = dict(server=sorted(server), generator=sorted(generator), self=sorted(os.sched_getaffinity(0)),\n"
        "           child=sorted(os.sched_getaffinity(child.pid)), pinned=[pinned_self, pinned_child],\n"
        "           split_after=[sorted(c) for c in split_cores()], usable=machine_info()['cpus_usable'])\n"
        "child.kill()\n"
        "print(json.dumps(out))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                    timeout=60).stdout)
    cores = sorted(os.sched_getaffinity(0))
    assert out["pinned"] == [True, True]
    assert out["self"] == out["generator"] and out["child"] == out["server"]
    assert out["split_after"] == [out["server"], out["generator"]]  # pinning itself hid no core
    assert out["usable"] == len(cores)
    if len(cores) >= 2:
        assert not set(out["server"]) & set(out["generator"])


def test_without_linux_facilities_measurement_degrades_with_one_message(monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture,
                                                                        tmp_path: Path) -> None:
    """As on macOS: no sched_*affinity, no /proc. CPU time comes from psutil, pinning says once why not."""
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(cpu, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(cpu, "_told_no_pinning", False)
    assert cpu.usable_cores() == set(range(os.cpu_count() or 1))
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    assert cpu.process_cpu_seconds(os.getpid()) >= 0.3  # psutil's figure, this process's CPU so far
    with caplog.at_level("WARNING", logger=cpu.__name__):
        assert cpu.pin_process(os.getpid(), {0}) is False
        assert cpu.pin_process(os.getpid(), {0}) is False
    said = [r.getMessage() for r in caplog.records if "pinning is not available" in r.getMessage()]
    assert len(said) == 1 and "side by side" in said[0]
    assert machine_info()["cpus_usable"] == os.cpu_count()

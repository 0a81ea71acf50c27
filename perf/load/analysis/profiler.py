"""Profile a server for a window: start it, sample it only while it is under load, read the frames.

The server runs under :mod:`perf.load.analysis.profile_window`: pyinstrument starts sampling
on :meth:`ProfiledServer.begin` and stops on :meth:`ProfiledServer.end`, so the startup (imports,
pool, seeding) is not in the profile. :func:`top_frames` lists the functions with the most
*self* time (time in that function, not in its callees), which is where a CPU-bound server
actually spends its cycles; :mod:`perf.load.analysis.flame` draws the whole tree. One
worker only: the profiler sees the process it runs in.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pandas as pd

from perf.services.server_process import ServerProcess


class ProfiledServer(ServerProcess):
    """``with ProfiledServer(["perf", "api", "--port", "{port}", ...]) as server:``, then
    ``server.begin()``, the load, ``profile = server.end()``.

    ``module_args`` is what follows ``python -m``; ``{port}`` in it is replaced by a free port.
    """

    def __init__(self, module_args: Sequence[str], *, interval: float = 0.001, startup_timeout: float = 60.0) -> None:
        if not module_args:
            raise ValueError("module_args is empty: pass e.g. ['perf', 'api', '--port', '{port}']")
        if not 0 < interval <= 0.1:
            raise ValueError(f"interval must be in (0, 0.1] seconds, got {interval!r}")
        super().__init__(name="profiled-server", startup_timeout=startup_timeout, stop_timeout=30.0,
                         stop_signal=signal.SIGINT)
        self._dir = tempfile.TemporaryDirectory(prefix="perf-profile-")
        self.output = Path(self._dir.name) / "profile.json"
        args = [a.replace("{port}", str(self.port)) for a in module_args]
        self.command = [sys.executable, "-m", "perf.load.analysis.profile_window", str(self.output),
                        str(interval), *args]

    def start(self) -> Self:
        """Start the server under pyinstrument and wait until it accepts connections."""
        try:
            super().start()
        except BaseException:
            self._dir.cleanup()
            raise
        return self

    def begin(self) -> None:
        """Start sampling (the server is up: its startup stays out of the profile)."""
        self.output.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR1)

    def end(self, *, timeout: float = 30.0) -> dict[str, Any]:
        """Stop sampling and return the window's profile (pyinstrument's JSON, parsed)."""
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while not self.output.exists():
            if time.monotonic() > deadline or not self.running:
                raise RuntimeError(f"the profiler wrote no profile within {timeout:g}s (was begin() called?); "
                                   f"the server log ends with:\n{self.log(2000)}")
            time.sleep(0.05)
        profile: dict[str, Any] = json.loads(self.output.read_text())
        return profile

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)
        self._dir.cleanup()


def top_frames(profile: dict[str, Any], *, n: int = 10) -> pd.DataFrame:
    """The ``n`` functions with the most self time: ``function``, ``file``, ``self_s``, ``share``."""
    root = profile.get("root_frame")
    if root is None:
        raise ValueError("profile has no root_frame: pass pyinstrument's JSON output (ProfiledServer.stop())")
    totals: dict[tuple[str, str], float] = {}
    stack: list[tuple[dict[str, Any], tuple[str, str]]] = [(root, ("?", "?"))]
    while stack:
        frame, parent = stack.pop()
        children = frame.get("children", [])
        own = frame["time"] - sum(child["time"] for child in children)
        name = frame.get("function", "?")
        # pyinstrument's "[self]" pseudo-frames hold their parent's own time.
        where = f"{frame.get('file_path_short', '?')}:{frame.get('line_no', '?')}"
        key = parent if name.startswith("[") else (name, where)
        totals[key] = totals.get(key, 0.0) + max(own, 0.0)
        stack.extend((child, key) for child in children)
    grand = sum(totals.values()) or 1.0
    rows = [{"function": f, "file": loc, "self_s": t, "share": t / grand} for (f, loc), t in totals.items()]
    frame = pd.DataFrame(rows, columns=["function", "file", "self_s", "share"])
    return frame.sort_values("self_s", ascending=False).head(n).reset_index(drop=True)

"""Profile a server for a window: run it under pyinstrument, load it, stop it, read the top frames.

``python -m pyinstrument -r json -o FILE -m MODULE ARGS`` samples the whole server
process; SIGINT makes uvicorn shut down gracefully, the module returns and
pyinstrument writes the profile. :func:`top_frames` turns it into a table of the
functions with the most *self* time (time in that function, not in its callees),
which is where a CPU-bound server actually spends its cycles. One worker only:
pyinstrument sees the process it started.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from perf.services.server_process import ServerProcess


class ProfiledServer(ServerProcess):
    """``with ProfiledServer(["perf", "api", "--port", "{port}", ...]) as server: ...; server.profile()``.

    ``module_args`` is what follows ``python -m``; ``{port}`` in it is replaced by a free port.
    """

    def __init__(self, module_args: Sequence[str], *, interval: float = 0.001, startup_timeout: float = 60.0) -> None:
        if not module_args:
            raise ValueError("module_args is empty: pass e.g. ['perf', 'api', '--port', '{port}']")
        if not 0 < interval <= 0.1:
            raise ValueError(f"interval must be in (0, 0.1] seconds, got {interval!r}")
        # SIGINT: uvicorn shuts down gracefully, the module returns and pyinstrument writes its profile.
        super().__init__(name="profiled-server", startup_timeout=startup_timeout, stop_timeout=30.0,
                         stop_signal=signal.SIGINT)
        self._dir = tempfile.TemporaryDirectory(prefix="perf-profile-")
        self.output = Path(self._dir.name) / "profile.json"
        args = [a.replace("{port}", str(self.port)) for a in module_args]
        self.command = [sys.executable, "-m", "pyinstrument", "-r", "json", "-o", str(self.output),
                        "-i", str(interval), "-m", *args]
        self._profile: dict[str, Any] | None = None

    def start(self) -> ProfiledServer:
        """Start the server under pyinstrument and wait until it accepts connections."""
        try:
            super().start()
        except BaseException:
            self._dir.cleanup()
            raise
        return self

    def stop(self, *, timeout: float = 30.0) -> dict[str, Any]:
        """SIGINT the server, wait for pyinstrument to write the profile, and return it (parsed JSON)."""
        self.close(timeout=timeout)
        if self._profile is None and self.output.exists():
            self._profile = json.loads(self.output.read_text())
        if self._profile is None:
            raise RuntimeError(f"pyinstrument wrote no profile; the server log ends with:\n{self.log(2000)}")
        return self._profile

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

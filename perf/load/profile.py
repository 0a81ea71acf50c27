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
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import pandas as pd

from perf.services.process import free_port, port_open, wait_until


class ProfiledServer:
    """``with ProfiledServer(["perf", "api", "--port", "{port}", ...]) as server: ...; server.profile()``.

    ``module_args`` is what follows ``python -m``; ``{port}`` in it is replaced by a free port.
    """

    def __init__(self, module_args: Sequence[str], *, interval: float = 0.001, startup_timeout: float = 60.0) -> None:
        if not module_args:
            raise ValueError("module_args is empty: pass e.g. ['perf', 'api', '--port', '{port}']")
        if not 0 < interval <= 0.1:
            raise ValueError(f"interval must be in (0, 0.1] seconds, got {interval!r}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="perf-profile-")
        self.output = Path(self._dir.name) / "profile.json"
        self._log = Path(self._dir.name) / "server.log"
        args = [a.replace("{port}", str(self.port)) for a in module_args]
        self._args = [sys.executable, "-m", "pyinstrument", "-r", "json", "-o", str(self.output),
                      "-i", str(interval), "-m", *args]
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        """The profiled server's process id."""
        if self._proc is None:
            raise RuntimeError("the server is not running: use `with ProfiledServer(...)`")
        return self._proc.pid

    def start(self) -> "ProfiledServer":
        """Start the server under pyinstrument and wait until it accepts connections."""
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT)
        up = wait_until(lambda: self._proc.poll() is not None or port_open(self.port), timeout=self._timeout)
        if not up or self._proc.poll() is not None:
            text = self._log.read_text(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"profiled server did not start on port {self.port}; its log ends with:\n{text}")
        return self

    def stop(self, *, timeout: float = 30.0) -> dict[str, Any]:
        """SIGINT the server, wait for pyinstrument to write the profile, and return it (parsed JSON)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with proc:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if self.output.exists():
                self._profile = json.loads(self.output.read_text())
        if self._profile is None:
            log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
            raise RuntimeError(f"pyinstrument wrote no profile; the server log ends with:\n{log}")
        return self._profile

    def close(self) -> None:
        """Stop the server if it still runs and delete the temporary files."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with proc:
                proc.kill()
                proc.wait()
        self._dir.cleanup()

    def __enter__(self) -> "ProfiledServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


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

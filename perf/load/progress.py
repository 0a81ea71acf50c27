"""Progress while load runs: a line per second in a terminal, a step bar for sweeps and ramps.

:class:`LineProgress` is what the CLI prints while a run lasts (elapsed, requests,
errors, p99 of the last whole second), like k6 and Locust. :func:`step_progress` shows
which step of a sweep or a ramp is running: a tqdm bar on stderr in a terminal; in
Jupyter a single line updated in place and blanked when done, so nothing of it stays
in a cell's output for nbval to compare.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from perf.load.results import LoadResult

#: ``run_load(progress=...)``: called about once a second with the result so far and the elapsed seconds.
ProgressCallback = Callable[[LoadResult, float], None]


class LineProgress:
    """A :data:`ProgressCallback` printing ``  3s  300 req  0 errors  p99 2.1 ms (last second)``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, result: LoadResult, elapsed: float) -> None:
        last = int(elapsed) - 1
        hist = result.series_hist.get(last)
        p99 = f"p99 {hist.percentile(99) * 1e3:,.1f} ms" if hist is not None and hist.count else "p99 n/a"
        errors = result.failed + result.timed_out + result.dropped
        print(f"{elapsed:5.0f}s  {result.scheduled:,} scheduled  {result.responses:,} responses  "
              f"{errors:,} errors  {p99} (second {last})", file=self.stream, flush=True)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _bundle(text: str) -> dict[str, str]:
    """A display bundle; the empty one leaves no text behind in the cell's output."""
    return {"text/plain": text, "text/html": f"<code>{text}</code>" if text else ""}


class StepProgress:
    """``with step_progress(total, "sweep") as bar: ... bar.step("8 users")``; see :func:`step_progress`."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self._bar: Any = None
        self._handle: Any = None
        self._display: Any = None
        if not enabled:
            return
        if _in_notebook():
            self._display = importlib.import_module("IPython.display").display
            self._handle = self._display(_bundle(""), raw=True, display_id=True)
        else:
            tqdm = importlib.import_module("tqdm").tqdm
            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, label: str) -> None:
        """Announce the step about to run (``label``, e.g. ``"8 users"``); counts the previous one done."""
        if self._bar is not None:
            if self.done:
                self._bar.update(1)
            self._bar.set_postfix_str(label)
        elif self._handle is not None:
            width = int(30 * self.done / max(self.total, 1))
            self._handle.update(_bundle(f"{self.desc}: step {self.done + 1}/{self.total} ({label}) "
                                        f"[{'#' * width}{'.' * (30 - width)}]"), raw=True)
        self.done += 1

    def close(self) -> None:
        """Remove the bar (terminal) or blank the line (notebook)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._handle is not None:
            self._handle.update(_bundle(""), raw=True)
            self._handle = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def step_progress(total: int, desc: str, *, enabled: bool = True) -> StepProgress:
    """A step counter for a sweep or a ramp (``total`` steps, may grow), shown where the code runs."""
    return StepProgress(total, desc, enabled=enabled)

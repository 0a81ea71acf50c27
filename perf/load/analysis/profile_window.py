"""Run a module under a profiler that samples only between two signals (startup excluded).

``python -m perf.load.analysis.profile_window OUTPUT INTERVAL MODULE [ARGS...]`` runs
``python -m MODULE ARGS`` in this process; SIGUSR1 starts pyinstrument (every thread's
current frame, whatever async task runs: ``async_mode="disabled"``), SIGUSR2 stops it and
writes its JSON profile to OUTPUT (written whole, then renamed: a reader never sees half).
:class:`perf.load.analysis.profiler.ProfiledServer` sends the signals around a load window.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

from pyinstrument import Profiler
from pyinstrument.renderers import JSONRenderer


def main(argv: list[str]) -> None:
    """Install the two signal handlers, then run the module as ``python -m`` would."""
    if len(argv) < 3:
        raise SystemExit("usage: python -m perf.load.analysis.profile_window OUTPUT INTERVAL MODULE [ARGS...]")
    output, interval, module, args = Path(argv[0]), float(argv[1]), argv[2], argv[3:]
    profiler = Profiler(interval=interval, async_mode="disabled")

    def begin(_signum: int, _frame: FrameType | None) -> None:
        if not profiler.is_running:
            profiler.start()

    def end(_signum: int, _frame: FrameType | None) -> None:
        if not profiler.is_running:
            return
        session = profiler.stop()
        partial = output.with_suffix(".partial")
        partial.write_text(JSONRenderer().render(session))
        os.replace(partial, output)

    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

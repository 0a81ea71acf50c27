"""Detached reaper: stops an implicitly started embedded pair once all its users have exited.

Run as ``python -m perf.services.watchdog STATE_DIR`` by :func:`ensure_services`;
it polls twice a second and exits as soon as the pair is gone or made persistent.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from perf.services.manager import reap_if_unused


def main(argv: list[str]) -> int:
    state_dir = Path(argv[0])
    time.sleep(1.0)  # let the starting process register as a user
    while not reap_if_unused(state_dir):
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Probabilistic early refresh (XFetch; Vattani, Chierichetti & Lowenstein, VLDB 2015).

Instead of every reader missing at the same instant when a hot key expires, each reader
refreshes early with a probability that rises as expiry approaches and with how long the
value takes to recompute: refresh when ``-beta * delta * ln(rand) >= time_to_expire``,
with ``rand`` uniform in (0, 1]. ``beta > 1`` refreshes earlier, ``beta < 1`` later,
``beta = 0`` never early.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable


def should_refresh_early(*, delta: float, time_to_expire: float, beta: float = 1.0,
                         rand: Callable[[], float] = random.random) -> bool:
    """True if this reader should recompute the value now.

    ``delta``: seconds the last recompute took; ``time_to_expire``: seconds until the
    entry expires; ``rand``: a uniform source in [0, 1) (injectable for tests).
    """
    if beta < 0:
        raise ValueError(f"beta={beta!r} must be >= 0 (1.0 is the paper's default, 0 disables early refresh)")
    if time_to_expire <= 0:
        return True
    if delta <= 0 or beta == 0:
        return False
    # 1 - random() is in (0, 1], so the log is finite
    return -beta * delta * math.log(1.0 - rand()) >= time_to_expire

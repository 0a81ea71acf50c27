"""Answer 503 before going away: a grace period between SIGTERM and the server's own shutdown.

uvicorn closes its listening socket as soon as it gets SIGTERM, but with ``--workers N``
the supervisor keeps the socket open until every worker has exited: a connection that
arrives meanwhile waits in the kernel's backlog, unanswered (a client sees a hang). So on
SIGTERM the worker first stops taking uploads (they get ``503`` + ``Retry-After`` at once,
which load balancers and clients retry elsewhere), keeps serving for ``grace`` seconds, and
only then hands the signal to the server, whose shutdown is short because the durable
queue returns unfinished work to PostgreSQL instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType


def drain_on_sigterm(on_drain: Callable[[], None], *, grace: float) -> Callable[[], None]:
    """Chain SIGTERM: call ``on_drain()`` at once and the previous handler ``grace`` s later.

    Call from the running event loop (a lifespan startup). Returns an undo function that
    restores the previous handler. A no-op (returning a no-op) off the main thread, or
    when the previous handler is not a Python callable (the server handles signals itself).
    """
    if grace < 0:
        raise ValueError(f"grace={grace!r} must be >= 0 seconds")
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()
    pending: list[asyncio.TimerHandle] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if pending:  # a second SIGTERM: stop waiting
            pending[0].cancel()
            previous(signum, frame)
            return
        on_drain()
        pending.append(loop.call_later(grace, previous, signum, frame))

    signal.signal(signal.SIGTERM, on_sigterm)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return undo

"""Warnings said once however many say them: N pools that lose one server log one line, not N.

A process holds several pools, caches and listeners on the same servers; when a server goes away
each of them notices, and each logging its own identical line buries the one fact under copies
(notebook 03 printed the same "cannot open connections" five times). :func:`warn_once` drops a
line that the same logger said, word for word, within the last ``within`` seconds.
"""

from __future__ import annotations

import logging
import time

_WITHIN = 10.0  # seconds: long enough to cover one outage noticed by every pool, short enough to hear the next
_MAX_REMEMBERED = 256  # distinct lines kept; past it the memory starts over (a line may then repeat once)
_said: dict[tuple[str, str], float] = {}


def warn_once(logger: logging.Logger, message: str, *args: object, within: float = _WITHIN) -> bool:
    """``logger.warning(message, *args)`` unless ``logger`` said the same text in the last ``within`` s.

    Returns whether the line was logged.
    """
    if within < 0:
        raise ValueError(f"within={within!r} must be >= 0 seconds (e.g. 10)")
    text = message % args if args else message
    now = time.monotonic()
    key = (logger.name, text)
    last = _said.get(key)
    if last is not None and now - last < within:
        return False
    if len(_said) >= _MAX_REMEMBERED:
        _said.clear()
    _said[key] = now
    logger.warning("%s", text)
    return True

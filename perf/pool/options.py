"""Argument validation for :class:`~perf.pool.pool.Pool`: errors name the parameter, the value and the fix."""

from __future__ import annotations

from typing import Any

RESET_MODES = ("none", "session", "always")


def check_number(name: str, value: object, *, minimum: float, allow_none: bool, hint: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a number >= ``minimum`` (or allowed None)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}{' or None' if allow_none else ''}, "
                         f"got {value!r}; {hint}")


def validate_options(*, min_size: Any, max_size: Any, timeout: Any, max_waiting: Any, idle_timeout: Any,
                     max_lifetime: Any, jitter: Any, reset: Any, reset_timeout: Any,
                     maintenance_interval: Any) -> None:
    """Raise ``TypeError``/``ValueError`` for the first bad pool option."""
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}; pass a whole number of connections")
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size!r}")
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size!r}")
    if min_size > max_size:
        raise ValueError(f"min_size ({min_size}) is greater than max_size ({max_size}); "
                         "lower min_size or raise max_size")
    if max_waiting is not None and (isinstance(max_waiting, bool) or not isinstance(max_waiting, int)
                                    or max_waiting < 0):
        raise ValueError(f"max_waiting must be an int >= 0 or None, got {max_waiting!r}")
    check_number("timeout", timeout, minimum=0, allow_none=True, hint="pass seconds, or None to wait forever")
    check_number("idle_timeout", idle_timeout, minimum=0, allow_none=True, hint="pass seconds or None")
    check_number("max_lifetime", max_lifetime, minimum=0, allow_none=True, hint="pass seconds or None")
    check_number("reset_timeout", reset_timeout, minimum=0, allow_none=False, hint="pass seconds")
    check_number("maintenance_interval", maintenance_interval, minimum=0.001, allow_none=True,
                  hint="pass seconds, or None to derive it from idle_timeout/max_lifetime")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
        raise ValueError(f"jitter must be a fraction in [0, 1), got {jitter!r}; 0.1 spreads expiry over 10%")
    if reset not in RESET_MODES and not callable(reset):
        raise ValueError(f"reset must be one of {', '.join(map(repr, RESET_MODES))} or an async callable "
                         f"taking the connection, got {reset!r}; \"always\" is the safe default")

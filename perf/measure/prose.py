"""Sentences computed from a run's numbers, so the prose says the opposite when the data do.

Each helper takes measured figures and returns a sentence (or clause) that states the
relation this run shows: which was quicker, whether a tail is long, whether a change
paid off, whether effects multiply or add. ``tolerance`` is the band inside which two
figures count as the same (the run's noise), so a 1.01x gain is never called a win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _check(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")


def describe_ratio(subject: str, subject_seconds: float, other: str, other_seconds: float, *,
                   tolerance: float = 0.05) -> str:
    """Which of two timings was quicker, and by how much (or that they were the same).

    >>> describe_ratio("PostgreSQL", 0.000132, "Redis", 0.000212)
    'PostgreSQL was 1.6x quicker than Redis'
    >>> describe_ratio("PostgreSQL", 0.000212, "Redis", 0.000132)
    'PostgreSQL was 1.6x slower than Redis'
    >>> describe_ratio("A", 1.0, "B", 1.02)
    'A and B took about the same time (1.02x, within the 5% noise)'
    """
    _check("subject_seconds", subject_seconds)
    _check("other_seconds", other_seconds)
    ratio = subject_seconds / other_seconds
    if ratio < 1 - tolerance:
        return f"{subject} was {1 / ratio:.1f}x quicker than {other}"
    if ratio > 1 + tolerance:
        return f"{subject} was {ratio:.1f}x slower than {other}"
    spread = max(ratio, 1 / ratio)
    return f"{subject} and {other} took about the same time ({spread:.2f}x, within the {tolerance:.0%} noise)"


def describe_tail(p50: float, p99: float, *, long_tail: float = 3.0) -> str:
    """How far the p99 sits from the median: ``several times`` only when it is ``long_tail``x or more.

    >>> describe_tail(0.001, 0.0016)
    'the p99 is 1.6x the median: a short tail'
    >>> describe_tail(0.001, 0.0052)
    'the p99 is 5.2x the median: several times it, a long tail'
    """
    _check("p50", p50)
    _check("p99", p99)
    ratio = p99 / p50
    if ratio >= long_tail:
        return f"the p99 is {ratio:.1f}x the median: several times it, a long tail"
    if ratio >= 2.0:
        return f"the p99 is {ratio:.1f}x the median: a noticeable tail"
    return f"the p99 is {ratio:.1f}x the median: a short tail"


def describe_gain(gain: float, *, change: str, tolerance: float = 0.1) -> str:
    """Whether ``change`` paid off: ``gain`` is old time / new time (or new rate / old rate).

    >>> describe_gain(1.01, change="running the two queries on separate connections")
    'running the two queries on separate connections made no measurable difference here (1.01x)'
    >>> describe_gain(1.8, change="the pool")
    'the pool paid off here (1.8x faster)'
    >>> describe_gain(0.8, change="the pool")
    'the pool made it slower here (0.80x)'
    """
    _check("gain", gain)
    if gain > 1 + tolerance:
        return f"{change} paid off here ({gain:.1f}x faster)"
    if gain < 1 - tolerance:
        return f"{change} made it slower here ({gain:.2f}x)"
    return f"{change} made no measurable difference here ({gain:.2f}x)"


def describe_combination(singles: Mapping[str, float], combined: float, *, tolerance: float = 0.15) -> str:
    """Whether separate speedups multiply, add, or overlap when applied together.

    ``singles`` maps each change to its speedup alone (x); ``combined`` is all of them
    together. Multiplying predicts the product; adding predicts ``1 + sum(s - 1)``.

    >>> describe_combination({"a": 2.0, "b": 3.0}, 6.2)
    'together they gave 6.2x, about the 6.0x their product predicts: the speedups multiply'
    >>> print(describe_combination({"a": 2.7, "b": 4.13, "c": 1.92}, 9.6))  # doctest: +NORMALIZE_WHITESPACE
    together they gave 9.6x, less than the 21.4x their product predicts and more than the 6.8x
    their gains add up to: the speedups overlap (part of what one saves, another already saved)
    """
    if not singles:
        raise ValueError("singles must name at least one change with its speedup")
    for name, value in singles.items():
        _check(f"singles[{name!r}]", value)
    _check("combined", combined)
    product = math.prod(singles.values())
    additive = 1 + sum(s - 1 for s in singles.values())
    if combined >= product * (1 - tolerance):
        if combined > product * (1 + tolerance):
            return (f"together they gave {combined:.1f}x, more than the {product:.1f}x their product predicts: "
                    "the speedups reinforce each other")
        return (f"together they gave {combined:.1f}x, about the {product:.1f}x their product predicts: "
                "the speedups multiply")
    if combined <= additive * (1 + tolerance):
        return (f"together they gave {combined:.1f}x, no more than the {additive:.1f}x their gains add up to "
                f"(their product would be {product:.1f}x): the speedups add at best")
    return (f"together they gave {combined:.1f}x, less than the {product:.1f}x their product predicts and more "
            f"than the {additive:.1f}x their gains add up to: the speedups overlap (part of what one saves, "
            "another already saved)")

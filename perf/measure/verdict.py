"""Verdicts from samples, never from one number: is A faster than B, and how sure are we?

:func:`compare` takes the rounds of two variants and answers in one of four ways: A was
faster, A was slower, *no difference we can detect* (the whole interval sits inside the
noise band), or *inconclusive* (the interval straddles 1 and reaches past the band, or
there are fewer than 3 rounds a side). The sentence carries its interval and its n, so
a reader sees how much the run can say.

The interval is Student's t on the log of the per-round ratios (rounds interleaved, so
round r of A and of B share the machine's weather), or Welch's t on the logs of each side
when the samples are not paired. The default confidence, 99.5%, keeps pure noise from
being called a direction more than about 1 time in 200 (``tests/test_measure_verdict.py``
checks it on 1,000 seeded trials, and that a true 1.5x is found).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, ParamSpec

from perf.measure.intervals import Interval, ratio_interval, unpaired_ratio_interval

MIN_ROUNDS = 3  # fewer rounds than this never yield a direction, whatever the numbers
CONFIDENCE = 0.995
NOISE = 0.05  # an interval wholly inside +-5% of 1 is "no difference we can detect"

Kind = Literal["faster", "slower", "same", "inconclusive",
               "rising", "levelled", "falling",
               "crosses", "no crossing",
               "ranked", "partly ranked",
               "multiply", "add", "overlap", "reinforce", "interfere",
               "long tail", "noticeable tail", "short tail"]


@dataclass(frozen=True)
class Verdict:
    """A judgement with the figures it rests on; ``str(verdict)`` is the sentence.

    ``kind`` is the machine-readable answer (``"inconclusive"`` when the data cannot
    decide), ``estimate``/``low``/``high`` the central figure and its interval, ``n`` the
    rounds behind it (the smaller side), ``rule`` the function that judged, ``figures``
    everything else a reader (or the claims ledger) needs to re-derive it.
    """

    kind: Kind
    text: str
    rule: str
    n: int
    estimate: float
    low: float
    high: float
    figures: dict[str, object] = field(default_factory=dict)
    inputs: dict[str, object] = field(default_factory=dict)  # the rule's arguments, JSON-ready: re-derivable

    @property
    def decided(self) -> bool:
        """False when the data could not decide (``kind == "inconclusive"``)."""
        return self.kind != "inconclusive"

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


P = ParamSpec("P")
#: Every public judging function by its name, for :func:`rederive`.
RULES: dict[str, Callable[..., Verdict]] = {}
_observers: list[Callable[[Verdict], None]] = []
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("perf_verdict_inside", default=False)


def add_observer(observer: Callable[[Verdict], None]) -> None:
    """Call ``observer(verdict)`` for every verdict a notebook asks for (not the ones a rule makes
    internally, such as the per-point comparisons of a crossover). ``perf.runs`` records them."""
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: Callable[[Verdict], None]) -> None:
    """Stop calling ``observer`` (no error when it was not registered)."""
    if observer in _observers:
        _observers.remove(observer)


def jsonable(value: object) -> object:
    """``value`` as plain JSON types: numbers as floats/ints, sequences (Series, arrays) as lists."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot record {type(value).__name__} {value!r} in a claim: pass numbers, strings or lists")


def judged(rule: Callable[P, Verdict]) -> Callable[P, Verdict]:
    """Register ``rule`` for :func:`rederive`, keep its arguments on the verdict, tell the observers."""
    signature = inspect.signature(rule)

    @functools.wraps(rule)
    def judge(*args: P.args, **kwargs: P.kwargs) -> Verdict:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        token = _inside.set(True)  # what the rule asks internally is part of this verdict, not a claim
        try:
            verdict = rule(*args, **kwargs)
        finally:
            _inside.reset(token)
        verdict = replace(verdict, inputs={k: jsonable(v) for k, v in bound.arguments.items()})
        if not _inside.get():
            for observer in list(_observers):
                observer(verdict)
        return verdict

    RULES[rule.__name__] = judge
    return judge


def rederive(rule: str, inputs: Mapping[str, object]) -> Verdict:
    """Judge again from recorded ``inputs`` (a claim's), without telling the observers."""
    # the other rules register when their module is imported, which perf.measure's lazy front door
    # no longer does for whoever audits: an audit in a fresh process found only `compare`
    import perf.measure.judgements  # noqa: F401

    if rule not in RULES:
        raise KeyError(f"no verdict rule {rule!r}; rules are {sorted(RULES)}")
    token = _inside.set(True)
    try:
        return RULES[rule](**inputs)
    finally:
        _inside.reset(token)


def fmt_x(value: float) -> str:
    """A factor the way the workbook prints it: two decimals below 10, one above.

    >>> fmt_x(1.234), fmt_x(12.34)
    ('1.23', '12.3')
    """
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _check_samples(name: str, samples: Sequence[float]) -> list[float]:
    values = [float(v) for v in samples]
    for i, v in enumerate(values):
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name}[{i}] must be a positive, finite number, got {v!r}; "
                             "pass seconds, rates or sizes, never zeros or NaNs")
    return values


def _interval(a: list[float], b: list[float], paired: bool | None, confidence: float) -> Interval:
    if paired is None:
        paired = len(a) == len(b)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired=True needs one sample per round on each side, got {len(a)} and {len(b)}")
        return ratio_interval([x / y for x, y in zip(a, b, strict=True)], confidence=confidence)
    return unpaired_ratio_interval(a, b, confidence=confidence)


@judged
def compare(a_samples: Sequence[float], b_samples: Sequence[float], *, a: str = "A", b: str = "B",
            larger_is_better: bool = False, words: tuple[str, str] = ("faster", "slower"),
            paired: bool | None = None, noise: float = NOISE, confidence: float = CONFIDENCE,
            min_rounds: int = MIN_ROUNDS) -> Verdict:
    """Judge A against B from their rounds: faster, slower, no detectable difference, or inconclusive.

    ``a_samples``/``b_samples`` are one figure per round (seconds by default; set
    ``larger_is_better`` for rates). ``paired`` (default: when both have the same length)
    takes the ratio round by round, as interleaved rounds allow. ``words`` names the
    better and the worse direction. The interval is on A/B at ``confidence``; a direction
    needs it to exclude 1 and at least ``min_rounds`` rounds a side.

    >>> str(compare([1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.05], a="pool", b="connect"))
    'pool was 2.02x faster than connect (interval 1.72-2.36x, n=4 rounds)'
    >>> compare([1.0, 1.2, 0.9], [1.1, 1.0, 1.0]).kind
    'inconclusive'
    >>> str(compare([1.0], [2.0], a="x", b="y"))
    'inconclusive: only 1 round a side (a direction needs 3); x/y = 0.50x'
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (a fraction such as 0.05), got {noise!r}")
    if min_rounds < 2:
        raise ValueError(f"min_rounds must be >= 2 (an interval needs two rounds), got {min_rounds!r}")
    av, bv = _check_samples("a_samples", a_samples), _check_samples("b_samples", b_samples)
    if not av or not bv:
        raise ValueError(f"a_samples and b_samples need at least one round each, got {len(av)} and {len(bv)}")
    n = min(len(av), len(bv))
    figures: dict[str, object] = {"a": a, "b": b, "a_samples": av, "b_samples": bv,
                                  "larger_is_better": larger_is_better, "noise": noise,
                                  "confidence": confidence}
    if n < min_rounds:
        point = (sum(math.log(v) for v in av) / len(av)) - (sum(math.log(v) for v in bv) / len(bv))
        ratio = math.exp(point)
        rounds = "round" if n == 1 else "rounds"
        text = (f"inconclusive: only {n} {rounds} a side (a direction needs {min_rounds}); "
                f"{a}/{b} = {fmt_x(ratio)}x")
        return Verdict("inconclusive", text, "compare", n, ratio, math.nan, math.nan, figures)
    iv = _interval(av, bv, paired, confidence)
    band = (1 / (1 + noise), 1 + noise)
    span = f"{fmt_x(iv.low)}-{fmt_x(iv.high)}x"
    if band[0] <= iv.low and iv.high <= band[1]:
        text = (f"no difference we can detect between {a} and {b} ({a}/{b} = {fmt_x(iv.estimate)}x, "
                f"interval {span}, n={n} rounds, inside the ±{noise:.0%} noise band)")
        return Verdict("same", text, "compare", n, iv.estimate, iv.low, iv.high, figures)
    if iv.excludes(1.0):
        a_better = (iv.estimate > 1) == larger_is_better
        factor = iv.estimate if iv.estimate > 1 else 1 / iv.estimate
        lo, hi = sorted((iv.low, iv.high) if iv.estimate > 1 else (1 / iv.high, 1 / iv.low))
        word = words[0] if a_better else words[1]
        text = f"{a} was {fmt_x(factor)}x {word} than {b} (interval {fmt_x(lo)}-{fmt_x(hi)}x, n={n} rounds)"
        return Verdict("faster" if a_better else "slower", text, "compare", n, iv.estimate, iv.low, iv.high,
                       figures)
    text = (f"inconclusive: {n} rounds, intervals overlap ({a}/{b} = {fmt_x(iv.estimate)}x, "
            f"interval {span} includes 1)")
    return Verdict("inconclusive", text, "compare", n, iv.estimate, iv.low, iv.high, figures)

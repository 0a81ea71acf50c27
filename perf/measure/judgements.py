"""Verdicts beyond A-vs-B: trends, crossovers, rankings and combinations, each from intervals.

Every function here returns a :class:`perf.measure.verdict.Verdict` whose sentence
carries its interval and n, and says *inconclusive* when the data cannot decide:

* :func:`trend`: still rising, levelled off, or falling, from the slope's interval;
* :func:`crossover`: a break-even only where the curves cross in the data (both sides
  separated), never extrapolated past the last point measured;
* :func:`rank`: an order that ties together every neighbour it cannot separate;
* :func:`combine`: speedups multiply, add, overlap or reinforce only when the interval
  of the combined speedup excludes the alternatives;
* :func:`tail`: a long or short tail from per-round p99/p50 ratios.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from perf.measure.intervals import Interval, ratio_interval, slope_interval
from perf.measure.verdict import CONFIDENCE, MIN_ROUNDS, NOISE, Kind, Verdict, compare, fmt_x, judged


@judged
def trend(x: Sequence[float], y: Sequence[float], *, what: str = "the value", unit: str = "",
          flat: float = NOISE, confidence: float = CONFIDENCE) -> Verdict:
    """Is ``y`` still rising over ``x``, levelled off, or falling? From the slope's interval.

    The slope is scaled to the relative change across the measured span of ``x``
    (``slope * span / median(y)``): *levelled off* when that whole interval lies within
    ``±flat``, *rising*/*falling* when it excludes 0, else *inconclusive*. Repeat an
    ``x`` to give it several rounds.

    >>> trend([1, 2, 3, 4], [3.98, 4.17, 4.36, 4.56], what="RSS").kind
    'rising'
    >>> trend([1, 2, 3, 4, 5], [4.0, 4.01, 3.99, 4.0, 4.01], what="RSS").kind
    'levelled'
    """
    if flat < 0:
        raise ValueError(f"flat must be >= 0 (a fraction such as 0.05), got {flat!r}")
    if len(x) < MIN_ROUNDS:
        raise ValueError(f"a trend needs at least {MIN_ROUNDS} points, got {len(x)}")
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    iv = slope_interval(xs, ys, confidence=confidence)
    scale = (max(xs) - min(xs)) / abs(statistics.median(ys) or 1.0)
    rel, lo, hi = iv.estimate * scale, iv.low * scale, iv.high * scale
    figures: dict[str, object] = {"x": xs, "y": ys, "flat": flat, "confidence": confidence}
    first, last = statistics.median(ys[: max(1, len(ys) // 3)]), statistics.median(ys[-max(1, len(ys) // 3):])
    span = f"{rel:+.0%} across the range measured (interval {lo:+.0%} to {hi:+.0%}, {len(xs)} points)"
    unit = f" {unit}" if unit else ""
    kind: Kind
    if -flat <= lo and hi <= flat:
        text = f"{what} levelled off: {span}, within ±{flat:.0%}"
        kind = "levelled"
    elif lo > 0:
        text = f"{what} was still rising ({first:.3g} to {last:.3g}{unit}): {span}"
        kind = "rising"
    elif hi < 0:
        text = f"{what} was falling ({first:.3g} to {last:.3g}{unit}): {span}"
        kind = "falling"
    else:
        text = f"inconclusive whether {what} levelled off: {span}"
        kind = "inconclusive"
    return Verdict(kind, text, "trend", len(xs), rel, lo, hi, figures)


@judged
def crossover(x: Sequence[float], a_rounds: Sequence[Sequence[float]], b_rounds: Sequence[Sequence[float]], *,
              a: str = "A", b: str = "B", x_name: str = "x", x_unit: str = "",
              larger_is_better: bool = False, words: tuple[str, str] = ("faster", "slower"),
              noise: float = NOISE, confidence: float = CONFIDENCE) -> Verdict:
    """Where A and B break even along ``x``, only if the curves cross in the data.

    ``a_rounds[i]``/``b_rounds[i]`` are the rounds at ``x[i]``. Each point is judged with
    :func:`compare`; a break-even is named only between a point where A is separated as
    better and one where B is, and placed by interpolating the log ratio between them.

    >>> v = crossover([1, 10, 100], [[1, 1.1, 0.9]] * 3, [[2, 2.1, 1.9]] * 3, a="br-4", b="br-11")
    >>> v.kind, "at every x measured" in str(v)
    ('no crossing', True)
    """
    if not (len(x) == len(a_rounds) == len(b_rounds)):
        raise ValueError(f"x, a_rounds and b_rounds must be the same length, got "
                         f"{len(x)}, {len(a_rounds)} and {len(b_rounds)}")
    if len(x) < 2:
        raise ValueError(f"a crossover needs at least 2 points along x, got {len(x)}")
    verdicts = [compare(ar, br, a=a, b=b, larger_is_better=larger_is_better, words=words, noise=noise,
                        confidence=confidence) for ar, br in zip(a_rounds, b_rounds, strict=True)]
    signs = [1 if v.kind == "faster" else -1 if v.kind == "slower" else 0 for v in verdicts]
    n = min(v.n for v in verdicts)
    unit = f" {x_unit}" if x_unit else ""
    figures: dict[str, object] = {"x": list(x), "kinds": [v.kind for v in verdicts],
                                  "ratios": [v.estimate for v in verdicts]}
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if signs[i] and signs[j] == -signs[i] and not any(signs[i + 1:j]):
                li, lj = math.log(verdicts[i].estimate), math.log(verdicts[j].estimate)
                at = float(x[i]) + (float(x[j]) - float(x[i])) * li / (li - lj) if li != lj else float(x[i])
                low_side = a if signs[i] > 0 else b
                high_side = b if signs[i] > 0 else a
                text = (f"{low_side} was {words[0]} at {x_name} {x[i]:g}{unit}, {high_side} at {x[j]:g}{unit}: "
                        f"they break even between the two (about {at:.3g}{unit} by interpolation)")
                return Verdict("crosses", text, "crossover", n, at, float(x[i]), float(x[j]), figures)
    if all(s == signs[0] != 0 for s in signs):
        better = a if signs[0] > 0 else b
        worse = b if signs[0] > 0 else a
        lo, hi = min(x), max(x)
        text = (f"{better} was {words[0]} than {worse} at every {x_name} measured ({lo:g}-{hi:g}{unit}): "
                "no break-even in this data")
        return Verdict("no crossing", text, "crossover", n, math.nan, float(lo), float(hi), figures)
    undecided = sum(1 for s in signs if s == 0)
    text = (f"inconclusive where {a} and {b} break even: at {undecided} of {len(x)} {x_name} points "
            f"the rounds do not separate them (n={n} rounds)")
    return Verdict("inconclusive", text, "crossover", n, math.nan, math.nan, math.nan, figures)


@judged
def rank(samples: Mapping[str, Sequence[float]], *, larger_is_better: bool = False, paired: bool | None = None,
         noise: float = NOISE, confidence: float = CONFIDENCE) -> Verdict:
    """Order variants best first, tying every pair of neighbours the rounds cannot separate.

    >>> str(rank({"a": [1, 1.1, 0.9, 1], "b": [3, 3.2, 2.9, 3.1], "c": [3.1, 2.9, 3.2, 3]}))
    'best first: a, then b = c (n=4 rounds; = marks neighbours the intervals do not separate)'
    """
    if len(samples) < 2:
        raise ValueError(f"rank needs at least 2 variants, got {list(samples)}")

    def centre(values: Sequence[float]) -> float:
        return statistics.fmean(math.log(float(v)) for v in values)

    order = sorted(samples, key=lambda k: centre(samples[k]), reverse=larger_is_better)
    groups: list[list[str]] = [[order[0]]]
    n = min(len(v) for v in samples.values())
    for prev, cur in zip(order, order[1:], strict=False):
        v = compare(samples[prev], samples[cur], a=prev, b=cur, larger_is_better=larger_is_better,
                    paired=paired, noise=noise, confidence=confidence)
        if v.kind == "faster":
            groups.append([cur])
        else:
            groups[-1].append(cur)
    figures: dict[str, object] = {"order": order, "groups": groups,
                                  "samples": {k: [float(x) for x in v] for k, v in samples.items()}}
    if len(groups) == 1:
        text = (f"inconclusive: {n} rounds separate none of {', '.join(order)} "
                "(each neighbour's interval includes no difference)")
        return Verdict("inconclusive", text, "rank", n, math.nan, math.nan, math.nan, figures)
    listed = ", then ".join(" = ".join(g) for g in groups)
    text = f"best first: {listed} (n={n} rounds; = marks neighbours the intervals do not separate)"
    kind: Kind = "ranked" if len(groups) == len(order) else "partly ranked"
    return Verdict(kind, text, "rank", n, float(len(groups)), math.nan, math.nan, figures)


@judged
def combine(singles: Mapping[str, Sequence[float]], together: Sequence[float], *,
            confidence: float = CONFIDENCE) -> Verdict:
    """Do speedups multiply, add, overlap or reinforce? Only when the interval excludes the others.

    ``singles`` maps each change to its speedup per round (x, > 1 is faster), ``together``
    is the speedup of all of them at once in the same rounds. Round by round the product
    predicts ``prod(s)`` and adding predicts ``1 + sum(s - 1)``; the verdict is *multiply*
    when the interval of together/product includes 1 and together/sum excludes it, *add*
    the reverse, *overlap* between the two, *reinforce* above the product, *interfere*
    below the sum, else *inconclusive* (as when product and sum are too close to tell).

    >>> combine({"a": [2.0, 2.1, 1.9], "b": [3.0, 2.9, 3.1]}, [6.0, 6.1, 5.9]).kind
    'multiply'
    """
    if not singles:
        raise ValueError("singles must name at least one change with its speedup per round")
    rounds = {len(v) for v in singles.values()} | {len(together)}
    if len(rounds) != 1:
        raise ValueError(f"singles and together need the same rounds (one speedup each per round), "
                         f"got lengths {sorted(rounds)}")
    n = rounds.pop()
    if n < MIN_ROUNDS:
        text = f"inconclusive: only {n} round(s) of each (telling multiply from add needs {MIN_ROUNDS})"
        return Verdict("inconclusive", text, "combine", n, math.nan, math.nan, math.nan, {})
    per_round = list(zip(*singles.values(), strict=True))
    product = [math.prod(float(s) for s in r) for r in per_round]
    additive = [1 + sum(float(s) - 1 for s in r) for r in per_round]
    vs_product = ratio_interval([t / p for t, p in zip(together, product, strict=True)], confidence=confidence)
    if all(a > 0 for a in additive):
        vs_sum = ratio_interval([t / s for t, s in zip(together, additive, strict=True)], confidence=confidence)
    else:  # the gains "add up" to nothing or less: any speedup is above that prediction
        vs_sum = Interval(math.inf, math.inf, math.inf, n)
    tog = ratio_interval([float(t) for t in together], confidence=confidence)
    figures: dict[str, object] = {"singles": {k: [float(x) for x in v] for k, v in singles.items()},
                                  "together": [float(t) for t in together]}
    head = (f"together {fmt_x(tog.estimate)}x (interval {fmt_x(tog.low)}-{fmt_x(tog.high)}x, n={n} rounds) "
            f"against a product of {fmt_x(statistics.median(product))}x and a sum of "
            f"{statistics.median(additive):.2f}x")
    kind: Kind
    p_in, s_in = not vs_product.excludes(1.0), not vs_sum.excludes(1.0)
    if p_in and not s_in:
        kind, tail_text = "multiply", "the speedups multiply"
    elif s_in and not p_in:
        kind, tail_text = "add", "the speedups add (no more)"
    elif vs_product.high < 1 and vs_sum.low > 1:
        kind, tail_text = "overlap", "the speedups overlap (part of what one saves, another already saved)"
    elif vs_product.low > 1:
        kind, tail_text = "reinforce", "the speedups reinforce each other"
    elif vs_sum.high < 1:
        kind, tail_text = "interfere", "less than even their sum: the changes get in each other's way"
    else:
        kind, tail_text = "inconclusive", "inconclusive: the interval does not exclude multiply or add"
    return Verdict(kind, f"{head}: {tail_text}", "combine", n, tog.estimate, tog.low, tog.high,
                   figures)


@judged
def tail(p50_rounds: Sequence[float], p99_rounds: Sequence[float], *, long_tail: float = 3.0,
         short_tail: float = 2.0, confidence: float = CONFIDENCE) -> Verdict:
    """How far the p99 sits from the median, from per-round p99/p50 ratios.

    *a long tail* when the whole interval is at or above ``long_tail``, *a short tail*
    when it is below ``short_tail``, *a noticeable tail* between, else inconclusive.

    >>> tail([1.0, 1.1, 1.0], [1.5, 1.6, 1.5]).kind
    'short tail'
    """
    if len(p50_rounds) != len(p99_rounds):
        raise ValueError(f"p50_rounds and p99_rounds need one figure per round each, "
                         f"got {len(p50_rounds)} and {len(p99_rounds)}")
    n = len(p50_rounds)
    figures: dict[str, object] = {"p50": [float(v) for v in p50_rounds], "p99": [float(v) for v in p99_rounds]}
    if n < MIN_ROUNDS:
        return Verdict("inconclusive", f"inconclusive: only {n} round(s) of p99/p50 (a tail verdict needs "
                       f"{MIN_ROUNDS})", "tail", n, math.nan, math.nan, math.nan, figures)
    iv = ratio_interval([float(q) / float(m) for m, q in zip(p50_rounds, p99_rounds, strict=True)],
                        confidence=confidence)
    kind: Kind
    span = f"the p99 is {fmt_x(iv.estimate)}x the median (interval {fmt_x(iv.low)}-{fmt_x(iv.high)}x, n={n} rounds)"
    if iv.low >= long_tail:
        kind, text = "long tail", f"{span}: several times it, a long tail"
    elif iv.high < short_tail:
        kind, text = "short tail", f"{span}: a short tail"
    elif iv.low >= short_tail and iv.high < long_tail:
        kind, text = "noticeable tail", f"{span}: a noticeable tail"
    else:
        kind, text = "inconclusive", f"{span}: inconclusive how long the tail is"
    return Verdict(kind, text, "tail", n, iv.estimate, iv.low, iv.high, figures)

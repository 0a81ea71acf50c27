"""Time sync and async callables honestly: warm up, repeat, keep every sample.

A single number hides the spread, so every function here returns all samples
(seconds per call) and leaves summarising to :mod:`perf.measure.stats`.
Comparisons are *interleaved*: round r runs A, then B, then C..., so drift on a
shared machine hits every variant alike, and ratios are taken round by round.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from perf.measure.stats import summarize
from perf.measure.verdict import Verdict, compare

SyncFn = Callable[[], Any]
AsyncFn = Callable[[], Awaitable[Any]]


def _check_counts(*, warmup: int, repeat: int, number: int) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat!r}")
    if number < 1:
        raise ValueError(f"number must be >= 1, got {number!r}")


@dataclass
class Timing:
    """Samples of one callable: ``samples[i]`` is seconds per call in repeat ``i``."""

    label: str
    samples: list[float]
    number: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: one row per repeat with columns ``variant``, ``round``, ``seconds``."""
        return pd.DataFrame({"variant": self.label, "round": range(len(self.samples)),
                             "seconds": self.samples})

    def summary(self) -> pd.DataFrame:
        """Median, min, max, quartiles and IQR of the samples (one row)."""
        return summarize(self.to_frame())

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return float(pd.Series(self.samples).median())


def time_sync(fn: SyncFn, *, warmup: int = 3, repeat: int = 20, number: int = 1,
              label: str | None = None) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeat`` timed batches of ``number`` calls.

    Each sample is the batch time divided by ``number`` (seconds per call); raise
    ``number`` for calls too fast for one ``perf_counter`` reading (< ~10 µs).
    """
    _check_counts(warmup=warmup, repeat=repeat, number=number)
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"{fn!r} is a coroutine function: use `await time_async(...)` instead")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return Timing(label or str(getattr(fn, "__name__", "fn")), samples, number)


async def time_async(fn: AsyncFn, *, warmup: int = 3, repeat: int = 20, number: int = 1,
                     label: str | None = None) -> Timing:
    """Async twin of :func:`time_sync`: ``fn`` returns an awaitable, awaited inside the timing."""
    _check_counts(warmup=warmup, repeat=repeat, number=number)
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            await fn()
        samples.append((time.perf_counter() - t0) / number)
    return Timing(label or str(getattr(fn, "__name__", "fn")), samples, number)


#: How many of each time unit make one second: a table or chart in ``unit`` multiplies seconds by it.
PER_SECOND: dict[str, float] = {"s": 1.0, "ms": 1e3, "µs": 1e6, "us": 1e6, "ns": 1e9}


@dataclass
class Comparison:
    """Interleaved samples of several variants; ``baseline`` is the one ratios divide by."""

    samples: pd.DataFrame  # columns: variant, round, seconds
    baseline: str
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per-variant median/min/max/IQR plus the median round-by-round ratio to the baseline."""
        summary = summarize(self.samples)
        ratios = self.ratios().groupby("variant")["ratio"].median()
        summary["ratio_to_baseline"] = summary.index.map(ratios)
        summary["speedup_vs_baseline"] = 1.0 / summary["ratio_to_baseline"]
        return summary

    def table(self, unit: str = "µs") -> pd.DataFrame:
        """:meth:`summary` for reading: median and quartiles in ``unit`` (``s``, ``ms``, ``µs``, ``ns``) to 3
        significant figures, the speedup to 2 decimals, rounds as an integer (what a notebook shows)."""
        scale = PER_SECOND.get(unit)
        if scale is None:
            raise ValueError(f"unit={unit!r}: use one of {sorted(PER_SECOND)}")
        summary = self.summary()
        shown = pd.DataFrame(index=summary.index)
        for column in ("median", "q1", "q3"):
            shown[f"{column} ({unit})"] = [float(f"{v * scale:.3g}") for v in summary[column]]
        shown["rounds"] = summary["n"].astype(int)
        shown[f"speedup vs {self.baseline}"] = summary["speedup_vs_baseline"].round(2)
        return shown

    def ratios(self) -> pd.DataFrame:
        """Round-by-round ``seconds / baseline seconds`` for every variant (baseline rows are 1.0)."""
        wide = self.samples.pivot(index="round", columns="variant", values="seconds")
        ratio = wide.div(wide[self.baseline], axis=0)
        return ratio.reset_index().melt(id_vars="round", var_name="variant", value_name="ratio")

    def ratio(self, variant: str, baseline: str | None = None) -> float:
        """Median of round-by-round ``variant / baseline`` time ratios (< 1 means faster)."""
        wide = self.samples.pivot(index="round", columns="variant", values="seconds")
        base = baseline or self.baseline
        for name in (variant, base):
            if name not in wide.columns:
                raise KeyError(f"no variant named {name!r}; have {sorted(wide.columns)}")
        return float((wide[variant] / wide[base]).median())

    def verdict(self, variant: str, baseline: str | None = None, **options: Any) -> Verdict:
        """Judge ``variant`` against ``baseline`` from the interleaved rounds (see :func:`compare`).

        ``options`` go to :func:`perf.measure.verdict.compare` (``a``/``b`` name the sides in
        the sentence; they default to the variant names).
        """
        wide = self.samples.pivot(index="round", columns="variant", values="seconds")
        base = baseline or self.baseline
        for name in (variant, base):
            if name not in wide.columns:
                raise KeyError(f"no variant named {name!r}; have {sorted(wide.columns)}")
        options.setdefault("a", variant)
        options.setdefault("b", base)
        return compare(wide[variant].tolist(), wide[base].tolist(), paired=True, **options)


def _variants(variants: Mapping[str, Callable[[], Any]], baseline: str | None) -> str:
    if not variants:
        raise ValueError("variants must name at least one callable")
    baseline = baseline or next(iter(variants))
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {list(variants)}")
    return baseline


def compare_sync(variants: Mapping[str, SyncFn], *, warmup: int = 2, repeat: int = 15, number: int = 1,
                 baseline: str | None = None, shuffle: bool = True, seed: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> Comparison:
    """Time several sync callables interleaved, round by round (order shuffled per round).

    ``baseline`` (default: the first variant) is what :meth:`Comparison.ratio` divides by.
    ``clock`` is wall time by default; see :func:`compare_cpu` for CPU time.
    """
    _check_counts(warmup=warmup, repeat=repeat, number=number)
    baseline = _variants(variants, baseline)
    rng = random.Random(seed)
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    rows = []
    for rnd in range(repeat):
        order = rng.sample(names, len(names)) if shuffle else names
        for name in order:
            fn = variants[name]
            t0 = clock()
            for _ in range(number):
                fn()
            rows.append((name, rnd, (clock() - t0) / number))
    return Comparison(pd.DataFrame(rows, columns=["variant", "round", "seconds"]), baseline)


def compare_cpu(variants: Mapping[str, SyncFn], *, warmup: int = 1, repeat: int = 15, number: int = 1,
                baseline: str | None = None, seed: int = 0) -> Comparison:
    """:func:`compare_sync` in CPU time of this thread (``time.thread_time``) instead of wall time.

    CPU time does not count the moments another process held the core, so on a shared
    machine figures for CPU-bound work (compressing, encoding) stay put while wall-clock
    timings swing 2x. Sleeping and waiting on I/O count as nothing: use it for CPU work only.
    """
    return compare_sync(variants, warmup=warmup, repeat=repeat, number=number, baseline=baseline,
                        seed=seed, clock=time.thread_time)


async def compare_async(variants: Mapping[str, AsyncFn], *, warmup: int = 2, repeat: int = 15,
                        number: int = 1, baseline: str | None = None, shuffle: bool = True,
                        seed: int = 0, clock: Callable[[], float] = time.perf_counter) -> Comparison:
    """Async twin of :func:`compare_sync`: each variant returns an awaitable.

    ``clock=time.thread_time`` times in CPU time (see :func:`compare_cpu`): right for awaits
    that never wait on I/O (an ASGI app called in process answering from memory), wrong for
    anything that sleeps or waits on a socket, and it also counts other tasks the event loop
    runs meanwhile.
    """
    _check_counts(warmup=warmup, repeat=repeat, number=number)
    baseline = _variants(variants, baseline)
    rng = random.Random(seed)
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            await variants[name]()
    rows = []
    for rnd in range(repeat):
        order = rng.sample(names, len(names)) if shuffle else names
        for name in order:
            fn = variants[name]
            t0 = clock()
            for _ in range(number):
                await fn()
            rows.append((name, rnd, (clock() - t0) / number))
    return Comparison(pd.DataFrame(rows, columns=["variant", "round", "seconds"]), baseline)

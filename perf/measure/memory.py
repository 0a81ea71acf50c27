"""Peak memory of a piece of work: Python allocations (tracemalloc) and process RSS (psutil).

The two answer different questions, so :func:`peak_memory` reports both:

* ``python_peak_bytes`` — the high-water mark of memory allocated through Python's
  allocators *while the work ran*, above what was allocated before it started
  (``tracemalloc``). It counts objects the work created (rows, dicts, buffers of
  extension types that allocate through ``PyMem``) and nothing else in the process, so it
  is precise and repeatable. It does not see memory a C library takes with plain
  ``malloc`` (e.g. zlib's or brotli's compressor state).
* ``rss_peak_bytes`` — the largest resident set size of the whole process sampled every
  few milliseconds during the work, above RSS at the start (psutil). It sees everything,
  including ``malloc`` and memory the allocator keeps after a free, but it is coarse
  (pages, sampling) and shared with whatever else the process does.

tracemalloc slows allocation-heavy code by 2–4x: never time work while measuring its memory.
"""

from __future__ import annotations

import inspect
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil

T = TypeVar("T")


@dataclass(frozen=True)
class MemoryPeak:
    """Peak memory above the starting point while one piece of work ran (see module doc)."""

    python_peak_bytes: int
    rss_peak_bytes: int
    seconds: float
    result: Any = None

    @property
    def python_peak_mib(self) -> float:
        """``python_peak_bytes`` in MiB."""
        return self.python_peak_bytes / 2**20

    @property
    def rss_peak_mib(self) -> float:
        """``rss_peak_bytes`` in MiB."""
        return self.rss_peak_bytes / 2**20


class _RssSampler:
    """Samples this process's RSS on a thread, so a peak inside a long await is seen too."""

    def __init__(self, interval: float) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _check_interval(interval: float) -> None:
    if not isinstance(interval, (int, float)) or not 0 < interval <= 1:
        raise ValueError(f"interval={interval!r} must be seconds in (0, 1], e.g. 0.005")


def _start_tracing() -> tuple[bool, int]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    return was_tracing, tracemalloc.get_traced_memory()[0]


def _stop_tracing(was_tracing: bool, before: int) -> int:
    peak = tracemalloc.get_traced_memory()[1]
    if not was_tracing:
        tracemalloc.stop()
    return max(peak - before, 0)


def peak_memory(fn: Callable[[], T], *, interval: float = 0.005) -> MemoryPeak:
    """Run ``fn()`` once and return its :class:`MemoryPeak` (``.result`` holds what it returned).

    >>> peak = peak_memory(lambda: [0] * 1_000_000)
    >>> peak.python_peak_mib > 7   # a list of a million pointers
    True
    """
    _check_interval(interval)
    if inspect.iscoroutinefunction(fn):
        raise TypeError("fn is async: use `await peak_memory_async(fn)`")
    was_tracing, before = _start_tracing()
    t0 = time.perf_counter()
    try:
        with _RssSampler(interval) as rss:
            result = fn()
    finally:
        python_peak = _stop_tracing(was_tracing, before)
    return MemoryPeak(python_peak, max(rss.peak - rss.start, 0), time.perf_counter() - t0, result)


async def peak_memory_async(fn: Callable[[], Awaitable[T]], *, interval: float = 0.005) -> MemoryPeak:
    """Await ``fn()`` once and return its :class:`MemoryPeak`, like :func:`peak_memory`.

    Everything else running on the event loop meanwhile is counted too: measure with the
    loop otherwise idle.
    """
    _check_interval(interval)
    was_tracing, before = _start_tracing()
    t0 = time.perf_counter()
    try:
        with _RssSampler(interval) as rss:
            result = await fn()
    finally:
        python_peak = _stop_tracing(was_tracing, before)
    return MemoryPeak(python_peak, max(rss.peak - rss.start, 0), time.perf_counter() - t0, result)

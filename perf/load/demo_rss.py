"""Notebook 05's apparatus for memory over a sustained run: the API workers' RSS while under load.

:func:`rss_under_load` drives a running server (e.g. :class:`~perf.api.server.ApiServer`)
with :func:`perf.load.run_load` for ``duration`` seconds while a thread samples the RSS of
the server process and every descendant (psutil, by pid) every ``interval`` seconds. With
uvicorn's ``--workers N`` the server's pid is a supervisor and the workers are its
children; with one worker the server process serves itself. :class:`RssRun` then gives the
workers' total RSS at the start, the end and the peak, and the slope in MiB per 10,000
requests, over the whole run and over its second half: a cache filling up grows early and
levels off at its bound; a leak keeps the same slope to the end.

>>> with ApiServer(settings) as server:
...     run = await rss_under_load(server, scenario=product_scenario(token=server.token), duration=10)
>>> run.start_mib, run.end_mib, run.slope_mib_per_10k, run.trend
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psutil

from perf.load.models import ClosedModel
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario
from perf.services.server_process import ServerProcess

_HELPERS = ("resource_tracker", "semaphore_tracker")
FLAT_MIB = 2.0  # total growth below this (or below 3% of the start) is "flat": allocator noise


def _role(proc: psutil.Process, root: int, has_children: bool) -> str:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    if any(helper in cmdline for helper in _HELPERS):
        return "helper"
    return "supervisor" if proc.pid == root and has_children else "worker"


class _TreeSampler:
    """Samples the RSS of ``pid`` and its descendants on a thread: rows ``(t, pid, role, rss)``."""

    def __init__(self, pid: int, interval: float) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.rows: list[tuple[float, int, str, int]] = []
        self.t0 = time.perf_counter()
        self._roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-tree-sampler", daemon=True)

    def sample(self) -> None:
        t = time.perf_counter() - self.t0
        children = self.root.children(recursive=True)
        for proc in [self.root, *children]:
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue  # exited between listing and reading
            role = self._roles.get(proc.pid)
            if role is None:
                role = self._roles[proc.pid] = _role(proc, self.root.pid, bool(children))
            self.rows.append((t, proc.pid, role, rss))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> _TreeSampler:
        self.t0 = time.perf_counter()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _slope(frame: pd.DataFrame) -> float:
    """MiB per 10,000 requests: least-squares slope of total worker RSS against requests served."""
    if len(frame) < 3 or frame["requests"].nunique() < 2:
        return float("nan")
    return float(np.polyfit(frame["requests"], frame["rss_mib"], 1)[0] * 10_000)


@dataclass(frozen=True)
class RssRun:
    """RSS samples of a server's processes under load, and what they add up to.

    ``samples``: one row per process and sample (``t`` seconds into the run, ``pid``, ``role``
    ``"worker"``/``"supervisor"``/``"helper"``, ``rss_mib``, ``requests`` completed by then).
    ``total``: the workers' RSS summed per sample (``t``, ``requests``, ``rss_mib``, ``workers``).
    """

    samples: pd.DataFrame
    total: pd.DataFrame
    result: LoadResult
    duration: float

    @property
    def requests(self) -> int:
        """Requests completed during the run."""
        return int(self.total["requests"].iloc[-1])

    @property
    def start_mib(self) -> float:
        """The workers' total RSS when the load started."""
        return float(self.total["rss_mib"].iloc[0])

    @property
    def end_mib(self) -> float:
        """The workers' total RSS when the load ended."""
        return float(self.total["rss_mib"].iloc[-1])

    @property
    def peak_mib(self) -> float:
        """The workers' highest total RSS sampled."""
        return float(self.total["rss_mib"].max())

    @property
    def growth_mib(self) -> float:
        """End minus start."""
        return self.end_mib - self.start_mib

    @property
    def slope_mib_per_10k(self) -> float:
        """MiB of worker RSS per 10,000 requests over the whole run (least squares)."""
        return _slope(self.total)

    @property
    def early_slope_mib_per_10k(self) -> float:
        """The slope over the first half of the run (warm-up and caches filling included)."""
        return _slope(self.total[self.total["t"] <= self.duration / 2])

    @property
    def late_slope_mib_per_10k(self) -> float:
        """The same slope over the second half of the run only: ~0 once caches reached their bound."""
        return _slope(self.total[self.total["t"] >= self.duration / 2])

    @property
    def late_growth_mib(self) -> float:
        """RSS the second half's slope accounts for over the second half's requests."""
        late = self.total[self.total["t"] >= self.duration / 2]
        served = float(late["requests"].iloc[-1] - late["requests"].iloc[0]) if len(late) else 0.0
        slope = self.late_slope_mib_per_10k
        return 0.0 if np.isnan(slope) else slope * served / 10_000

    @property
    def trend(self) -> str:
        """``"flat"`` (grew < 2 MiB or < 3% overall); ``"levelled off"`` (grew, but the second half
        added < 1 MiB or grew at under a third of the first half's slope: something filled up
        towards a bound); else ``"growing"`` (the same slope to the end, as a leak would)."""
        if self.growth_mib < max(FLAT_MIB, 0.03 * self.start_mib):
            return "flat"
        early, late = self.early_slope_mib_per_10k, self.late_slope_mib_per_10k
        if self.late_growth_mib < 1.0 or (early > 0 and late < early / 3):
            return "levelled off"
        return "growing"


async def rss_under_load(server: ServerProcess, *, scenario: Scenario, duration: float, users: int = 16,
                         interval: float = 0.5, driver: str = "builtin") -> RssRun:
    """Drive ``server`` with ``users`` closed-loop users for ``duration`` s, sampling its processes' RSS.

    ``server`` must be running (its ``pid`` the server's master process). Returns an
    :class:`RssRun`; request counts per sample come from the load result's per-second series.
    """
    if not 0 < interval <= 5:
        raise ValueError(f"interval={interval!r} must be seconds in (0, 5], e.g. 0.5")
    if not duration >= 4 * interval:
        raise ValueError(f"duration={duration!r} must be >= 4 * interval={interval!r} (a few samples at least)")
    if not server.running:
        raise RuntimeError(f"server {server!r} is not running: start it first (`with ApiServer(...) as server:`)")
    with _TreeSampler(server.pid, interval) as sampler:
        result = await run_load(server.url, model=ClosedModel(users=users, duration=duration), scenario=scenario,
                                driver=driver)
    samples = pd.DataFrame(sampler.rows, columns=["t", "pid", "role", "rss"])
    samples["rss_mib"] = samples.pop("rss") / 2**20
    # requests completed by time t: the per-second series, cumulated and interpolated
    seconds = sorted(result.series)
    done = np.cumsum([result.series[s][0] for s in seconds]) if seconds else np.zeros(0)
    xs = np.array([0.0, *[s + 1.0 for s in seconds]])
    ys = np.array([0.0, *done])
    samples["requests"] = np.interp(samples["t"], xs, ys).round().astype(int)
    workers = samples[samples["role"] == "worker"]
    total = (workers.groupby("t", as_index=False)
             .agg(requests=("requests", "first"), rss_mib=("rss_mib", "sum"), workers=("pid", "nunique")))
    return RssRun(samples, total, result, duration)

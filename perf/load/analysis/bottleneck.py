"""Where did the time go? Server parts (``Server-Timing``) vs network+client; server CPU and /metrics.

* :func:`time_breakdown`: per endpoint, the mean client-seen latency split into the
  server's own parts (``db``, ``cache``, ``app``... from ``Server-Timing``) and the rest
  (network, kernel, the generator's own queueing).
* :class:`ServerSampler`: during a run, samples the server processes' CPU (psutil,
  children included, as a fraction of one core) and scrapes ``/metrics`` (Prometheus
  text or flat JSON), so pool waits, hit ratios and queue depth sit next to latency.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from types import TracebackType
from typing import Any

import httpx
import pandas as pd
import psutil

from perf.aio import cancel_and_wait
from perf.load.results import LoadResult

_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+([-+0-9.eEinfINFNa]+)")


def time_breakdown(result: LoadResult) -> pd.DataFrame:
    """Mean ms per endpoint: client latency, each server part, server total, network+client, shares.

    ``Server-Timing`` parts are averaged over the responses that carried them; the
    server total is its ``total`` entry when present, else the sum of the parts.
    """
    rows = {}
    for endpoint, hist in result.histograms.items():
        if hist.count == 0:
            continue
        parts = {name: total / n for name, (total, n) in result.server_timing.get(endpoint, {}).items() if n}
        server = parts.pop("total", None)
        if server is None:
            server = sum(parts.values())
        client = hist.mean * 1e3
        row: dict[str, float] = {"client_ms": client, **{f"{k}_ms": v for k, v in parts.items()},
                                 "server_ms": server, "outside_server_ms": max(client - server, 0.0)}
        row["server_share"] = min(server / client, 1.0) if client else 0.0
        rows[endpoint] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0.0)


def mix_breakdown(result: LoadResult) -> pd.Series:
    """:func:`time_breakdown` over the whole traffic mix: each endpoint weighted by its responses.

    A plain mean over endpoints would count a 5% write route as much as a 60% list route;
    this is the mean over every response, as the client saw the run.
    """
    table = time_breakdown(result)
    if table.empty:
        raise ValueError("result has no responses to break down: run load first")
    weights = pd.Series({e: float(result.histograms[e].count) for e in table.index})
    mean = table.mul(weights, axis=0).sum() / weights.sum()
    mean["server_share"] = min(mean["server_ms"] / mean["client_ms"], 1.0) if mean["client_ms"] else 0.0
    return mean


def server_shares(result: LoadResult) -> dict[str, float]:
    """Each ``Server-Timing`` part's share of all server time, over every response (so weighted by the mix)."""
    totals: dict[str, float] = {}
    for parts in result.server_timing.values():
        for name, (total, _n) in parts.items():
            if name != "total":
                totals[name] = totals.get(name, 0.0) + total
    grand = sum(totals.values())
    return {name: value / grand for name, value in totals.items()} if grand else {}


def parse_metrics(text: str) -> dict[str, float]:
    """``/metrics`` body -> ``{name or name{labels}: value}`` (Prometheus text, or JSON flattened with dots)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        out: dict[str, float] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), item)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[prefix] = float(value)

        walk("", json.loads(stripped))
        return out
    values = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _PROM_LINE.match(line.strip())
        if match:
            try:
                values[match.group(1)] = float(match.group(2))
            except ValueError:
                continue
    return values


class ServerSampler:
    """``async with ServerSampler(pid=..., metrics_url=...) as sampler: await run_load(...)``.

    Samples every ``interval`` seconds until closed; ``pid`` may be a uvicorn master
    (its worker children are included).
    """

    def __init__(self, *, pid: int | None = None, metrics_url: str | None = None,
                 interval: float = 0.5) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.pid = pid
        self.metrics_url = metrics_url
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.metrics: list[dict[str, float]] = []
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._procs: dict[int, psutil.Process] = {}

    def _cpu_seconds(self) -> float:
        if self.pid is None:
            return 0.0
        try:
            root = self._procs.setdefault(self.pid, psutil.Process(self.pid))
            for child in root.children(recursive=True):
                self._procs.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in list(self._procs.values()):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    async def _scrape(self) -> None:
        if self._client is None or self.metrics_url is None:
            return
        try:
            response = await self._client.get(self.metrics_url)
            self.metrics.append({"t": time.monotonic(), **parse_metrics(response.text)})
        except (httpx.HTTPError, ValueError):
            pass  # a missing sample is better than a failed run

    async def _loop(self) -> None:
        last_t, last_cpu = time.monotonic(), self._cpu_seconds()
        while True:
            await asyncio.sleep(self.interval)
            now, cpu = time.monotonic(), self._cpu_seconds()
            self.samples.append({"t": now, "cpu": (cpu - last_cpu) / (now - last_t)})
            last_t, last_cpu = now, cpu
            await self._scrape()

    async def start(self) -> ServerSampler:
        """Begin sampling."""
        if self.metrics_url:
            self._client = httpx.AsyncClient(timeout=2.0)
            await self._scrape()
        self._task = asyncio.create_task(self._loop())
        return self

    async def close(self) -> None:
        """Stop sampling (takes one last metrics scrape) and close the HTTP client."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._client is not None:
            await self._scrape()
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> ServerSampler:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def cpu(self) -> pd.Series:
        """Server CPU per sample, in cores (1.0 = one core busy)."""
        return pd.Series([s["cpu"] for s in self.samples], dtype=float, name="server_cpu")

    def metric(self, name: str) -> float | None:
        """The last scraped value of ``name`` (exact key), or None."""
        for sample in reversed(self.metrics):
            if name in sample:
                return sample[name]
        return None

    def metric_delta(self, name: str) -> float | None:
        """Last minus first scraped value of a counter ``name``, or None."""
        values = [s[name] for s in self.metrics if name in s]
        return values[-1] - values[0] if len(values) >= 2 else None

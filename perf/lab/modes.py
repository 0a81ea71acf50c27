"""Put the product API (``perf.api``) under load, one server per mode, interleaved round by round.

Notebook 05 compares the seed-style baseline with each optimisation switched on in
turn. Every mode gets its own ``ApiServer`` (same schema and data, its own cache
namespace), a warm-up, then the measured run while :class:`ServerSampler` samples
the server's CPU and ``/metrics``. Servers are stopped before the next one starts,
so they never compete for the cores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field

import pandas as pd

from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings, new_token
from perf.load.analysis.bottleneck import ServerSampler
from perf.load.models import ClosedModel, LoadModel
from perf.load.results import LoadResult, merge_results
from perf.load.runner import run_load
from perf.load.scenarios import Scenario
from perf.services.server_process import start_together


@dataclass
class ModeRun:
    """One measured run of one mode: the result, server CPU (cores) and the last /metrics."""

    mode: str
    round: int
    result: LoadResult
    server_cpu: float
    metrics: dict[str, float] = field(default_factory=dict)


def hit_ratio(metrics: dict[str, float]) -> float:
    """Cache hits (``X-Cache: hit-l1 | hit-l2``) over every response the server counted (``/metrics.json``).

    Every worker's counts (``server_requests``) when the server reported them, else the
    answering worker's (``requests``); NaN when it reported none.
    """
    prefix = "server_requests.by_cache." if any(k.startswith("server_requests.by_cache.") for k in metrics) \
        else "requests.by_cache."
    counts = {key.rsplit(".", 1)[-1]: value for key, value in metrics.items() if key.startswith(prefix)}
    total = sum(counts.values())
    return (counts.get("hit-l1", 0.0) + counts.get("hit-l2", 0.0)) / total if total else float("nan")


@dataclass
class ModeComparison:
    """Every run; :meth:`table` summarises per mode against the baseline."""

    runs: list[ModeRun]
    baseline: str

    def frame(self) -> pd.DataFrame:
        """One row per run: mode, round, rps, p50/p99 ms, error rate, server CPU, cache hit ratio, body bytes."""
        rows = []
        for run in self.runs:
            r = run.result
            p = r.overall().percentiles() if r.overall().count else {"p50": float("nan"), "p99": float("nan")}
            rows.append({"mode": run.mode, "round": run.round, "rps": r.throughput, "p50_ms": p["p50"] * 1e3,
                         "p99_ms": p["p99"] * 1e3, "error_rate": r.error_rate, "server_cpu": run.server_cpu,
                         "hit_ratio": hit_ratio(run.metrics), "bytes_per_response": r.bytes_per_response()})
        return pd.DataFrame(rows)

    def unanswered(self) -> list[tuple[int, str]]:
        """``(round, mode)`` of every run that got no response at all (a stalled server, a starved core).

        Their rounds are left out of :meth:`table`, :meth:`speedups` and :meth:`rounds`: a round
        where one mode measured nothing puts nothing beside the others.
        """
        return [(run.round, run.mode) for run in self.runs if run.result.responses == 0]

    def _answered(self) -> pd.DataFrame:
        frame = self.frame()
        dropped = {rnd for rnd, _ in self.unanswered()}
        return frame[~frame["round"].isin(dropped)] if dropped else frame

    def table(self) -> pd.DataFrame:
        """Per mode: median rps, p50, p99, and the rps speedup vs the baseline (median of per-round ratios)."""
        frame = self._answered()
        columns = ["rps", "p50_ms", "p99_ms", "error_rate", "server_cpu", "hit_ratio", "bytes_per_response"]
        table = frame.groupby("mode", sort=False)[columns].median()
        wide = frame.pivot(index="round", columns="mode", values="rps")
        table["speedup"] = [float((wide[m] / wide[self.baseline]).median()) for m in table.index]
        return table

    def speedups(self) -> pd.DataFrame:
        """Round by round, each mode's rps / the baseline's in that round (``mode``, ``round``, ``speedup``)."""
        wide = self._answered().pivot(index="round", columns="mode", values="rps")
        ratio = wide.div(wide[self.baseline], axis=0)
        return ratio.reset_index().melt(id_vars="round", var_name="mode", value_name="speedup")

    def rounds(self, column: str = "rps") -> pd.DataFrame:
        """``column`` of every answered round, one row per round and one column per mode (a verdict's rounds)."""
        return self._answered().pivot(index="round", columns="mode", values=column)

    def merged(self, mode: str) -> LoadResult:
        """Every round of ``mode`` merged into one result (histograms added, counts summed)."""
        results = [run.result for run in self.runs if run.mode == mode]
        if not results:
            raise KeyError(f"no run of mode {mode!r}; modes are {sorted({r.mode for r in self.runs})}")
        merged = merge_results(results)
        merged.duration = sum(r.duration for r in results)
        merged.offered_rate = results[0].offered_rate
        return merged

    def result(self, mode: str, round: int = 0) -> LoadResult:
        """The :class:`LoadResult` of ``mode`` in ``round``."""
        for run in self.runs:
            if run.mode == mode and run.round == round:
                return run.result
        raise KeyError(f"no run of mode {mode!r} in round {round}; modes are {sorted({r.mode for r in self.runs})}")

    def run(self, mode: str, round: int = 0) -> ModeRun:
        """The :class:`ModeRun` of ``mode`` in ``round``."""
        for run in self.runs:
            if run.mode == mode and run.round == round:
                return run
        raise KeyError(f"no run of mode {mode!r} in round {round}")


def _slug(mode: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", mode.lower()).strip("-")


async def run_api(server: ApiServer, *, model: LoadModel, scenario: Scenario, warmup: float = 0.5,
                  driver: str = "builtin", timeout: float = 10.0) -> tuple[LoadResult, float, dict[str, float]]:
    """Warm ``server`` up, then run ``model`` while sampling its CPU and /metrics."""
    if warmup > 0:
        await run_load(server.url, model=ClosedModel(users=4, duration=warmup), scenario=scenario,
                       driver=driver, timeout=timeout)
    async with ServerSampler(pid=server.pid, metrics_url=server.url + "/metrics.json", interval=0.25) as sampler:
        result = await run_load(server.url, model=model, scenario=scenario, driver=driver, timeout=timeout)
    cpu = float(sampler.cpu.mean()) if len(sampler.cpu) else float("nan")
    return result, cpu, (sampler.metrics[-1] if sampler.metrics else {})


async def compare_modes(modes: Sequence[str], *, database_url: str, redis_url: str, schema: str,
                        products: int, scenario: Scenario, model: LoadModel, rounds: int = 1,
                        warmup: float = 0.5, workers: int = 1, cpu: Sequence[int] | None = None,
                        cache_namespace: str | None = None, api_token: str | None = None,
                        keep_servers: bool = False) -> ModeComparison:
    """Run each mode (``perf.api.settings`` syntax, e.g. ``"baseline,+cache"``) ``rounds`` times, interleaved.

    ``api_token``: the write token every server gets (the one ``scenario``'s writes send).
    ``keep_servers`` starts every mode's server once and keeps it up across the rounds
    (idle while another is measured, so they still never compete for the cores), started and
    stopped side by side: the rounds then cost a warm-up each instead of a server start.

    The first mode is the baseline. Data is seeded once into ``schema`` (``products`` rows).
    """
    if not modes:
        raise ValueError("modes is empty: pass e.g. ['baseline', 'baseline,+cache', 'all']")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    token = api_token or new_token()

    def server_for(mode: str) -> ApiServer:
        namespace = f"{(cache_namespace or schema).rstrip(':')}:{_slug(mode)}"
        settings = ApiSettings(database_url=database_url, redis_url=redis_url, mode=ApiMode.parse(mode),
                               schema=schema, products=products, cache_namespace=namespace, api_token=token)
        return ApiServer(settings, workers=workers, cpu=cpu)

    runs = []
    with start_together(*(server_for(mode) for mode in modes)) if keep_servers else nullcontext(()) as started:
        kept = dict(zip(modes, started, strict=True)) if keep_servers else {}
        for rnd in range(rounds):
            order = list(modes) if rnd % 2 == 0 else list(modes)[::-1]
            for mode in order:
                with ExitStack() as one:
                    server = kept.get(mode) or one.enter_context(server_for(mode))
                    result, server_cpu, metrics = await run_api(server, model=model, scenario=scenario,
                                                                warmup=warmup)
                runs.append(ModeRun(mode, rnd, result, server_cpu, metrics))
    return ModeComparison(runs, baseline=modes[0])

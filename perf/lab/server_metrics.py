"""Notebook 07's apparatus for monitoring: the server's own ``/metrics`` beside the load generator's numbers.

* :func:`server_vs_client` runs the same open-model load ``rounds`` times against one
  server, scraping ``/metrics`` before and after each run, and sets, per route, the
  server's p50/p99 (histogram bucket deltas) beside the generator's (scheduled send and
  actual send). :meth:`ServerVsClient.describe` words the relations the rounds show.
* :func:`stepped_scrapes` scrapes ``/metrics`` every ``interval`` seconds through a stepped
  open load: the series a dashboard would draw.

>>> cmp = await server_vs_client(server, scenario=scenario, model=OpenModel(rate=200, duration=1), rounds=3)
>>> cmp.summary(); print(cmp.describe())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from perf.api.server import ApiServer
from perf.load.analysis.scrape import (
    MetricsRecorder,
    Samples,
    client_percentiles,
    scrape,
    scrape_series,
    server_percentiles,
)
from perf.load.models import OpenModel
from perf.load.product import ROUTES
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario

_SHOWN = ["server_count", "client_count", "server_p50_ms", "sent_p50_ms", "client_p50_ms", "server_p99_ms",
          "p99_low_ms",
          "p99_high_ms", "sent_p99_ms", "client_p99_ms"]


@dataclass
class ServerVsClient:
    """``rounds``: one row per (round, route) with the server's and the generator's counts and percentiles."""

    rounds: pd.DataFrame

    @property
    def n_rounds(self) -> int:
        """How many rounds ran."""
        return int(self.rounds["round"].nunique()) if len(self.rounds) else 0

    def summary(self) -> pd.DataFrame:
        """Per route, the median over rounds of each figure (ms), server and generator side by side."""
        return self.rounds.groupby("route")[_SHOWN].median()

    def describe(self, route: str | None = None, *, min_count: int = 50) -> str:
        """The relations between the server's and the generator's figures that the rounds show, in words.

        Every request's time at the generator contains its time at the server, so the
        generator's p99 can only be at or above the server's true p99, which lies in the
        reported bucket: the p99 comparison says whether the generator's p99 lay *above*
        that bucket (a measurably longer tail) or *inside* it (no difference the histogram
        can resolve). The medians, where the buckets are finest, split the gap in two: from
        the scheduled to the actual send (the generator's own queueing) and from the send
        to the server's timing (network and kernel both ways, the server's accept queue and
        HTTP parsing before the timing layer, the generator reading the answer). Figures
        are medians over rounds [min-max]; fewer than 3 rounds are a measurement, not a finding.
        A route with fewer than ``min_count`` requests in a round gets its counts only.
        """
        frame = self.rounds if route is None else self.rounds[self.rounds["route"] == route]
        if frame.empty:
            return "No route was served in every round: nothing to compare."
        n = self.n_rounds
        rounds = f"{n} round{'s' if n != 1 else ''}"
        sentences = []
        for name, rows in frame.groupby("route", sort=False):
            above = int((rows["client_p99_ms"] > rows["p99_high_ms"]).sum())
            counted = int((rows["server_count"] == rows["client_count"]).sum())
            if rows["server_count"].min() < min_count:
                sentences.append(
                    f"**{name}**: {int(rows['server_count'].min())} requests in a round at the fewest, too few for "
                    f"percentiles from the buckets to say anything; the server counted exactly the generator's "
                    f"responses in {counted} of {rounds}.")
                continue
            sentences.append(
                f"**{name}**: at the median the server measured {_spread(rows['server_p50_ms'])} ms and the "
                f"generator {_spread(rows['client_p50_ms'])} ms; of the difference, "
                f"{_spread(rows['client_p50_ms'] - rows['sent_p50_ms'])} ms passed before the request left the "
                f"generator and {_spread(rows['sent_p50_ms'] - rows['server_p50_ms'])} ms between its send and the "
                f"server's timing layer. At p99 the server's bucket was {_buckets(rows)} and the generator's p99 "
                f"{_spread(rows['client_p99_ms'])} ms: "
                f"above the round's bucket in {above} of {rounds}, inside it in {n - above}. The server counted "
                f"exactly the generator's responses in {counted} of {rounds}.")
        verdict = "" if n >= 3 else f" With {rounds} this is a measurement, not a finding: run 3 or more."
        return " ".join(sentences) + (" Figures: median over rounds [min-max]." if n > 1 else "") + verdict


def _buckets(rows: pd.DataFrame) -> str:
    """``25-50 ms`` or, when rounds differ, ``25-50 ms (2 rounds), 50-75 ms (1)``."""
    counts = rows.groupby(["p99_low_ms", "p99_high_ms"]).size()
    parts = [f"{low:g}-{high:g} ms" + (f" ({n} round{'s' if n != 1 else ''})" if len(counts) > 1 else "")
             for (low, high), n in counts.items()]
    return ", ".join(parts)


def _spread(values: pd.Series) -> str:
    med = float(values.median())
    if len(values) < 2:
        return f"{med:,.2f}"
    return f"{med:,.2f} [{float(values.min()):,.2f}-{float(values.max()):,.2f}]"


async def server_vs_client(server: ApiServer, *, scenario: Scenario, model: OpenModel, rounds: int = 3,
                           routes: Mapping[str, str] = ROUTES, warmup: float = 1.0) -> ServerVsClient:
    """Run ``model`` ``rounds`` times with ``/metrics`` scraped before and after each; per route, both sides.

    ``routes`` maps the scenario's endpoint names to the API's ``"METHOD template"``
    (:data:`perf.load.product.ROUTES`). The scraper runs on loopback, so it needs no token.
    """
    import httpx

    if rounds < 1:
        raise ValueError(f"rounds={rounds} must be >= 1 (3 or more for a finding)")
    if warmup > 0:  # an unmeasured run of the same load: pools, caches and both workers warm
        await run_load(server.url, model=OpenModel(rate=model.phases()[0][0], duration=warmup), scenario=scenario)
    rows = []
    async with httpx.AsyncClient(timeout=5.0) as client:
        for round_ in range(rounds):
            before = await scrape(client, server.url + "/metrics")
            result = await run_load(server.url, model=model, scenario=scenario)
            after = await scrape(client, server.url + "/metrics")
            rows += _round_rows(round_, before, after, result, routes)
    return ServerVsClient(pd.DataFrame(rows))


def _round_rows(round_: int, before: Samples, after: Samples, result: LoadResult,
                routes: Mapping[str, str]) -> list[dict[str, object]]:
    wanted = sorted(set(routes.values()))
    server = server_percentiles(before, after, routes=wanted)
    client = client_percentiles(result, routes)
    rows = []
    for route in wanted:
        if route not in server.index or route not in client.index:
            continue
        s, c = server.loc[route], client.loc[route]
        rows.append({"round": round_, "route": route, "server_count": int(s["count"]),
                     "client_count": int(c["count"]), "server_p50_ms": s["p50_ms"], "server_p99_ms": s["p99_ms"],
                     "p99_low_ms": s["p99_low_ms"], "p99_high_ms": s["p99_high_ms"], "client_p50_ms": c["p50_ms"],
                     "client_p99_ms": c["p99_ms"], "sent_p50_ms": c["sent_p50_ms"], "sent_p99_ms": c["sent_p99_ms"]})
    return rows


async def stepped_scrapes(server: ApiServer, *, scenario: Scenario, steps: Sequence[tuple[float, float]],
                          interval: float = 0.25) -> tuple[pd.DataFrame, LoadResult]:
    """Scrape ``/metrics`` every ``interval`` s through an open load of ``steps`` ``[(req/s, seconds), ...]``.

    Returns :func:`~perf.load.analysis.scrape.scrape_series` of the scrapes (the server's
    requests/s, p50/p99 and in-flight per interval, product routes only) and the load's result.
    """
    model = OpenModel(steps=list(steps))
    async with MetricsRecorder(server.url + "/metrics", interval=interval) as recorder:
        result = await run_load(server.url, model=model, scenario=scenario)
    series = scrape_series(recorder.scrapes, routes=sorted(set(ROUTES.values())))
    return series, result


__all__ = ["ServerVsClient", "server_vs_client", "stepped_scrapes"]

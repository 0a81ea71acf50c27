"""perf.pool.demo_race and perf.bench.pool: every strategy runs, ratios come out of one interleaved run."""

from __future__ import annotations

import asyncio
import io

import pytest

from perf.bench.pool import report
from perf.pool.demo_race import ASYNCPG, CONNECT, OURS, STRATEGIES, Contenders, race, run_burst
from perf.pool.demo_timeline import run_timeline


async def test_race_runs_every_strategy_and_reports_targets(database_url: str) -> None:
    async with Contenders(database_url, max_size=2, application_name="pooltest-race") as contenders:
        burst = await run_burst(contenders[OURS], concurrency=4, queries=40)
        assert burst.queries == 40 and burst.qps > 0 and burst.waits.count == 40
        result = await race(contenders, concurrencies=[1, 10], rounds=2, queries={n: 20 for n in STRATEGIES})
    assert len(result.frame) == 2 * 2 * len(STRATEGIES)
    assert set(result.frame["strategy"]) == set(STRATEGIES)
    assert result.frame.loc[result.frame["concurrency"] == 10, "queries"].min() == 20
    summary = result.summary()
    assert list(summary.columns) == ["strategy", "concurrency", "median_qps", "q1_qps", "q3_qps", "rounds"]
    assert result.ratio(OURS, CONNECT, 10) > 0 and result.ratio(OURS, OURS, 1) == 1.0
    assert result.waits[(ASYNCPG, 10)].count == 40
    with pytest.raises(KeyError, match="no strategy 'nope'"):
        result.ratio("nope", OURS, 10)
    out = io.StringIO()
    report(result, out=out)
    text = out.getvalue()
    assert "perf.pool, reset=session vs perf.pool, reset=none at c=10:" in text and "target >= 0.85x" in text
    assert "asyncpg pool, no-op reset" in text and "RESET ALL" in text  # each pool says what it resets


async def test_bad_arguments_are_named(database_url: str) -> None:
    with pytest.raises(ValueError, match=r"unknown strategies \['bogus'\]"):
        Contenders(database_url, names=["bogus"])
    with pytest.raises(ValueError, match="max_size must be an int >= 1, got 0"):
        Contenders(database_url, max_size=0)
    async with Contenders(database_url, max_size=1, names=[OURS]) as contenders:
        with pytest.raises(ValueError, match="concurrency=5, queries=2"):
            await run_burst(contenders[OURS], concurrency=5, queries=2)
        with pytest.raises(ValueError, match="rounds must be >= 1"):
            await race(contenders, concurrencies=[1], rounds=0, queries=10)


async def test_timeline_counts_successes_and_errors() -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)
        if calls % 3 == 0:
            raise RuntimeError("every third call fails")

    timeline = await run_timeline(work, concurrency=2, seconds=0.3, bucket=0.1, pause_after_error=0.001)
    assert len(timeline.frame) == 3
    assert timeline.frame["ok"].sum() + timeline.frame["errors"].sum() == calls
    assert timeline.errors["RuntimeError"] == timeline.frame["errors"].sum() > 0
    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        await run_timeline(work, concurrency=0, seconds=1)


def test_compare_and_rank_judge_from_the_rounds() -> None:
    import pandas as pd

    from perf.pool.demo_race import RaceResult, compare_strategies, rank_strategies

    def result(**qps: list[float]) -> RaceResult:
        rows = [(r, 10, name, 1, 1.0, q) for name, values in qps.items() for r, q in enumerate(values)]
        return RaceResult(pd.DataFrame(rows, columns=["round", "concurrency", "strategy", "queries", "seconds", "qps"]))

    assert compare_strategies(result(A=[2, 2.1, 1.9], B=[1, 1.05, 0.95]), "A", "B", 10).kind == "faster"
    assert compare_strategies(result(A=[1, 1.05, 0.95], B=[2, 2.1, 1.9]), "A", "B", 10).kind == "slower"
    # all three rounds agree, but 3 rounds of this spread cannot exclude no difference
    said = compare_strategies(result(A=[1.3, 1.02, 1.1], B=[1, 1, 1]), "A", "B", 10)
    assert said.kind == "inconclusive" and "3 rounds" in str(said)
    ranked = rank_strategies(result(A=[2, 2.1, 1.9], B=[1, 1.05, 0.95], C=[1.02, 0.98, 1.0]), 10)
    assert ranked.kind == "partly ranked" and ranked.figures["groups"][0] == ["`A`"]
    with pytest.raises(KeyError, match="no bursts at concurrency=50"):
        compare_strategies(result(A=[1, 1, 1], B=[1, 1, 1]), "A", "B", 50)

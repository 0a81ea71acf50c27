"""The syllabus' ``uvicorn.run(app, workers=4)`` refuses to start; ``--workers`` with an import string
(ApiServer) runs separate worker processes, and the comparison counts what each served."""

from __future__ import annotations

import asyncio

import pytest

from perf.api.settings import ApiSettings
from perf.lab.workers import compare_workers, run_app_object_workers
from tests._api_helpers import drop_namespace, unique_name


def test_uvicorn_refuses_workers_for_an_app_object():
    run = run_app_object_workers(workers=4, timeout=30)
    assert run.returncode == 3  # uvicorn's STARTUP_FAILURE
    assert "import string" in run.output


def test_one_worker_is_refused_as_a_demonstration():
    with pytest.raises(ValueError, match="workers=1 must be >= 2"):
        run_app_object_workers(workers=1)


async def test_two_workers_both_serve_and_every_request_is_counted(database_url: str, redis_url: str):
    schema = unique_name("t_workers")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=50)
    try:
        result = await compare_workers(settings, workers=(1, 2), users=[2, 8], duration=0.5, warmup=0.2, rounds=1)
    finally:
        await asyncio.to_thread(drop_namespace, database_url, schema, redis_url, schema)
    assert list(result.levels["workers"]) == [1, 1, 2, 2] and (result.levels["error_rate"] == 0).all()
    assert (result.levels["rps"] > 0).all()
    two = result.spread[result.spread["workers"] == 2]
    assert len(two) == 2 and two["pid"].nunique() == 2  # two processes, each found through /metrics
    assert two["share"].sum() == pytest.approx(1.0)
    one = result.spread[result.spread["workers"] == 1]
    served = result.levels[result.levels["workers"] == 1]
    assert int(one["requests"].iloc[0]) >= served["rps"].sum() * 0.5 * 0.9  # the sweep's requests, all on one pid
    assert list(result.cpu["seen_workers"]) == [1, 2]

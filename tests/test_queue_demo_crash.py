"""The crash experiment behind ``python -m perf.bench.queue``: a worker SIGKILLed right after
acknowledging tasks loses them with the in-process queue and loses none with the durable one."""

from __future__ import annotations

import pytest

from perf.queue.demo_crash import crash_experiment
from tests._api_helpers import unique_name


def test_the_in_process_queue_loses_accepted_tasks_the_durable_one_does_not(database_url: str):
    memory = crash_experiment("memory", database_url, tasks=20, delay=1.0, schema=unique_name("t_crash"))
    assert memory.accepted == 20 and memory.lost >= 16  # 4 workers: at most 4 could finish in time
    durable = crash_experiment("durable", database_url, tasks=20, delay=0.2, schema=unique_name("t_crash"))
    assert durable.accepted == 20 and durable.completed == 20 and durable.lost == 0


def test_tasks_must_be_positive(database_url: str):
    with pytest.raises(ValueError, match="tasks=0 must be >= 1"):
        crash_experiment("memory", database_url, tasks=0)

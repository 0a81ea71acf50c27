"""The two test tiers: what marks a test slow, that fast + slow is the whole suite, and that the suite
leaves a user's own Redis as it found it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from perf.cache.demo_keys import keys_vs_scan
from perf.config import load_settings
from perf.services import ServiceHandle, ensure_services
from tests._tiers import reaches_a_process_starter

ROOT = Path(__file__).resolve().parents[1]


def _spawns() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _calls_a_helper_that_spawns() -> None:
    _spawns()


def _pure() -> int:
    return sum(range(10))


def test_a_test_is_slow_when_its_code_reaches_a_process_start() -> None:
    assert reaches_a_process_starter([_spawns])
    assert reaches_a_process_starter([_calls_a_helper_that_spawns])  # through a helper of its module
    assert reaches_a_process_starter([ensure_services])  # through the project's own code
    assert not reaches_a_process_starter([_pure])
    assert not reaches_a_process_starter([load_settings])


def _collected(*args: str) -> set[str]:
    # without the plugins these files do not use: their imports are most of pytest's start-up
    quiet = ["-p", "no:randomly", "-p", "no:schemathesis", "-p", "no:locust"]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *quiet, *args],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if "::" in line}


def test_fast_and_slow_tiers_are_the_whole_suite_with_nothing_twice() -> None:
    paths = ["tests/test_queue_naive.py", "tests/test_api_hostile.py", "tests/test_pool_cancel.py",
             "notebooks/00_setup.ipynb"]
    everything = _collected(*paths)
    fast, slow = _collected(*paths, "-m", "not slow"), _collected(*paths, "-m", "slow")
    assert fast and slow and not fast & slow
    assert fast | slow == everything
    assert {test for test in slow if ".ipynb::" in test} == {test for test in everything if ".ipynb::" in test}
    assert not [test for test in fast if "test_api_hostile" in test]  # it starts an API server


@pytest.fixture(scope="module")
def private_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHandle]:
    base = tmp_path_factory.mktemp("tiers")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    with ensure_services(load_settings(env | {"PERF_STATE_DIR": str(base / "state")})) as handle:
        yield handle


async def _foreign_keys(redis_url: str, *, write: bool) -> dict[int, dict[bytes, bytes | None]]:
    """A user's keys in every database (written when ``write``); what each database holds of them now."""
    base = redis_url.rsplit("/", 1)[0]
    found: dict[int, dict[bytes, bytes | None]] = {}
    for db in range(16):
        client = redis.from_url(f"{base}/{db}")
        try:
            names = [f"customer:{db}:{i}" for i in range(20)] + [f"demo:{db}", f"test:{db}", f"api:{db}"]
            if write:
                await client.mset({name: f"theirs {db}".encode() for name in names})
            found[db] = dict(zip([n.encode() for n in names], await client.mget(names), strict=True))
        finally:
            await client.aclose()
    return found


@pytest.mark.timeout(600)  # a pytest run of its own over the Redis-touching tests
def test_the_tests_leave_a_users_redis_keys_in_every_database(private_pair: ServiceHandle) -> None:
    written = asyncio.run(_foreign_keys(private_pair.redis_url, write=True))
    env = os.environ | {"DATABASE_URL": private_pair.database_url, "REDIS_URL": private_pair.redis_url}
    tests = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_cache_*.py"))]
    # the fast cache tests and the exercises' checks (the slow ones start Redis servers of their own)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:randomly",
                          *tests, "tests/test_exercises.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # and the KEYS demo, which walks the whole database it is given
    asyncio.run(keys_vs_scan(private_pair.redis_url, keys=1_000, rounds=1))
    assert asyncio.run(_foreign_keys(private_pair.redis_url, write=False)) == written


def test_random_order_keeps_each_notebook_whole_and_in_order() -> None:
    """pytest-randomly shuffles nbval's cells like tests; each notebook must still run as one block, top down."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "randomly",
                          "--randomly-seed=4242", "-p", "no:schemathesis", "-p", "no:locust",
                          "tests/test_queue_naive.py", "notebooks/00_setup.ipynb", "notebooks/04_compression.ipynb"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    paths = [test.split("::", 1)[0] for test in ids]
    blocks = [path for i, path in enumerate(paths) if i == 0 or path != paths[i - 1]]
    assert len(blocks) == len(set(blocks)), blocks  # no file's tests split in two
    for notebook in ("notebooks/00_setup.ipynb", "notebooks/04_compression.ipynb"):
        cells = [int(test.rsplit(" ", 1)[-1]) for test in ids if test.startswith(notebook)]
        assert cells == sorted(cells) and len(cells) > 3, cells

"""The two test tiers: what marks a test slow, that fast + slow is the whole suite, and that the suite
leaves a user's own Redis as it found it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def _collected(*runs: list[str]) -> list[set[str]]:
    """The test ids each of ``runs`` (pytest arguments) collects; the collections run side by side."""
    # without the plugins these files do not use: their imports are most of pytest's start-up
    quiet = ["-p", "no:randomly", "-p", "no:schemathesis", "-p", "no:locust"]
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", *quiet, *args],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in runs]
    found = []
    for proc, args in zip(procs, runs, strict=True):
        out, err = proc.communicate()
        assert proc.returncode == 0, (args, err[-2000:])
        found.append({line for line in out.splitlines() if "::" in line})
    return found


def test_fast_and_slow_tiers_are_the_whole_suite_with_nothing_twice() -> None:
    paths = ["tests/test_queue_naive.py", "tests/test_api_hostile.py", "tests/test_pool_cancel.py",
             "notebooks/00_setup.ipynb"]
    everything, fast, slow = _collected(paths, [*paths, "-m", "not slow"], [*paths, "-m", "slow"])
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


PLANTED = """
import redis

def test_a_careless_cleanup(redis_url):
    redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/5").flushdb()
"""


def test_a_session_that_deletes_a_users_keys_fails(private_pair: ServiceHandle, tmp_path: Path) -> None:
    """Every session writes a user's keys into each Redis database and fails if one is gone at its end
    (tests/_sentinels.py): here a planted test flushes database 5, and its session fails naming the keys."""
    planted = tmp_path / "test_planted.py"
    planted.write_text(PLANTED)
    env = os.environ | {"DATABASE_URL": private_pair.database_url, "REDIS_URL": private_pair.redis_url}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "tests.conftest",
                          "-p", "no:schemathesis", "-p", "no:locust", "--rootdir", str(tmp_path), str(planted)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "1 passed" in out and "1 error" in out and "deleted or changed keys they did not write" in out, out[-3000:]
    assert "5/customer:sentinel-" in out, out[-3000:]


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

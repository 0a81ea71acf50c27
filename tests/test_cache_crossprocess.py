"""Cross-process behaviour with real Python subprocesses sharing one Redis:
L1 invalidation by key and by tag reaches other processes, and single-flight holds across them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from typing import Any, AsyncIterator, Iterator

import pytest

from perf.cache.multilevel import MultiLevelCache

WORKER = r"""
import asyncio, json, os, sys
from perf.cache.multilevel import MultiLevelCache

async def main(url, namespace):
    async with MultiLevelCache(url, namespace=namespace, l1_ttl=60) as cache:
        calls = 0

        async def loader():
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.3)
            return f"loaded-by-{os.getpid()}"

        def reply(**fields):
            print(json.dumps({"calls": calls, **fields}), flush=True)

        reply(ready=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            cmd, key, *rest = line.split()
            if cmd == "fetch":
                r = await cache.fetch(key, loader)
                reply(value=r.value, source=r.source)
            elif cmd == "get":
                r = await cache.get(key)
                reply(value=r.value, source=r.source, found=r.found)
            elif cmd == "stampede":
                rs = await asyncio.gather(*(cache.fetch(key, loader) for _ in range(int(rest[0]))))
                reply(values=sorted({r.value for r in rs}))
            elif cmd == "quit":
                break

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class Worker:
    """A subprocess running a MultiLevelCache, driven line by line over stdin/stdout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return await self.read()

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        assert line, f"worker exited with {self.proc.poll()}"
        return json.loads(line)


@contextlib.contextmanager
def spawn(redis_url: str, namespace: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, "-c", WORKER, redis_url, namespace], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield proc
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                proc.stdin.write("quit x\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def workers(redis_url: str, redis_prefix: str) -> AsyncIterator[list[Worker]]:
    namespace = redis_prefix.rstrip(":")
    with spawn(redis_url, namespace) as a, spawn(redis_url, namespace) as b:
        pair = [Worker(a), Worker(b)]
        for worker in pair:
            assert (await worker.read())["ready"]
        yield pair


async def wait_until_miss(worker: Worker, key: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = await worker.ask(f"get {key}")
        if not reply["found"] or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_delete_in_one_process_drops_l1_in_the_others(workers: list[Worker], redis_url: str,
                                                             redis_prefix: str) -> None:
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as third:
        await third.set("product:1", "v1", tags=["category:books"])
        await third.set("product:2", "v2", tags=["category:books"])
        for worker in workers:
            assert (await worker.ask("fetch product:1"))["source"] == "l2"
            assert (await worker.ask("get product:1"))["source"] == "l1"  # held in the worker's own memory
            assert (await worker.ask("fetch product:2"))["source"] == "l2"
        assert await third.delete("product:1")
        for worker in workers:
            assert (await wait_until_miss(worker, "product:1"))["found"] is False
            assert (await worker.ask("get product:2"))["source"] == "l1"  # untouched
        assert await third.invalidate_tags("category:books") == 1
        for worker in workers:
            assert (await wait_until_miss(worker, "product:2"))["found"] is False


@pytest.mark.slow
async def test_single_flight_across_processes(workers: list[Worker]) -> None:
    for worker in workers:
        worker.proc.stdin.write("stampede hot 50\n")  # type: ignore[union-attr]
        worker.proc.stdin.flush()  # type: ignore[union-attr]
    replies = [await worker.read() for worker in workers]
    assert sum(r["calls"] for r in replies) == 1  # 100 concurrent misses in 2 processes, 1 load
    assert len({v for r in replies for v in r["values"]}) == 1

"""The crash experiment: accept tasks in a child process, SIGKILL it mid-burst, count what survives.

:func:`crash_experiment` starts ``python -m perf.queue.demo_crash`` (a "worker" holding an
in-process :class:`~perf.queue.TaskQueue` or a :class:`~perf.queue.durable.DurableQueue`),
writes task payloads to its stdin and reads one ``A <id>`` line per accepted task (the
worker's 202) and ``D <id>`` per finished one. After ``tasks`` acknowledgements the
child is SIGKILLed. For the durable queue a fresh consumer in this process then takes over
whatever PostgreSQL holds (the killed worker's running tasks after their lease); the
in-process queue has nothing to take over.

>>> crash_experiment("memory", database_url, tasks=100)
CrashResult(queue='memory', accepted=100, completed=0, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Literal

import asyncpg

from perf.queue.durable import DurableQueue
from perf.queue.naive import TaskQueue as NaiveQueue
from perf.queue.queue import TaskQueue

QueueKind = Literal["naive", "memory", "durable"]


@dataclass(frozen=True)
class CrashResult:
    """Tasks acknowledged before the kill vs tasks that ever reached ``done``."""

    queue: str
    accepted: int
    completed: int
    completed_before_kill: int
    recovery_seconds: float

    @property
    def lost(self) -> int:
        """Accepted tasks that never completed."""
        return self.accepted - self.completed


async def _child(kind: QueueKind, database_url: str, schema: str, delay: float, workers: int) -> None:
    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def work(payload: bytes) -> int:
        await asyncio.sleep(delay)
        say(f"D {payload.decode()}")
        return len(payload)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    if kind == "naive":  # the syllabus' queue: no task ids, the payload stands for one
        seed = NaiveQueue(max_workers=workers, max_queue_size=100_000)
        await seed.start()
        while line := (await reader.readline()).strip():
            await seed.add_task(work, line)
            say(f"A {line.decode()} {line.decode()}")
    elif kind == "memory":
        async with TaskQueue(workers=workers, max_size=100_000) as memory:
            while line := (await reader.readline()).strip():
                say(f"A {line.decode()} {memory.submit(work, line)}")
    else:
        async with DurableQueue(database_url, schema=schema, handlers={"work": work}, workers=workers,
                                lease=2.0, max_depth=100_000) as durable:
            while line := (await reader.readline()).strip():
                say(f"A {line.decode()} {await durable.submit('work', line)}")


def crash_experiment(kind: QueueKind, database_url: str, *, tasks: int = 100, delay: float = 0.05,
                     workers: int = 4, schema: str = "bench_crash", recovery_timeout: float = 30.0) -> CrashResult:
    """Run the experiment for ``kind`` (``"naive"``, ``"memory"`` or ``"durable"``); see the module docstring.

    The client sends ``tasks`` payloads one by one, each after the previous one's
    acknowledgement, and SIGKILLs the worker right after the last acknowledgement.
    """
    if tasks < 1:
        raise ValueError(f"tasks={tasks} must be >= 1")
    asyncio.run(_reset(database_url, schema))
    accepted: list[str] = []  # payloads acknowledged, and their task ids
    task_ids: list[str] = []
    done: set[str] = set()
    with subprocess.Popen([sys.executable, "-m", "perf.queue.demo_crash", kind, database_url, schema, str(delay),
                           str(workers)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            for i in range(tasks):
                child.stdin.write(f"task-{i}\n")
                child.stdin.flush()
                while True:
                    line = child.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the {kind} worker exited early (code {child.poll()})")
                    tag, payload, *task_id = line.split()
                    if tag == "D":
                        done.add(payload)
                        continue
                    accepted.append(payload)
                    task_ids.append(task_id[0])
                    break
            child.send_signal(signal.SIGKILL)
            child.wait()
            done.update(line.split()[1] for line in child.stdout if line.startswith("D "))
        finally:
            child.kill()
    before = len(done & set(accepted))
    started = time.perf_counter()
    completed = before if kind != "durable" else asyncio.run(_recover(database_url, schema, task_ids, delay, workers,
                                                                       recovery_timeout))
    result = CrashResult(kind, len(accepted), completed, before, time.perf_counter() - started)
    asyncio.run(_reset(database_url, schema, create=False))
    return result


async def _recover(database_url: str, schema: str, accepted: list[str], delay: float, workers: int,
                   timeout: float) -> int:
    async def work(payload: bytes) -> int:
        await asyncio.sleep(delay)
        return len(payload)

    async with DurableQueue(database_url, schema=schema, handlers={"work": work}, workers=workers, lease=2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
                done = await pool.fetchval(f'SELECT count(*) FROM "{schema}".durable_tasks '
                                           "WHERE state = 'done' AND id = ANY($1)", accepted)
            if done == len(accepted):
                break
            await asyncio.sleep(0.2)
    return int(done)


async def _reset(database_url: str, schema: str, *, create: bool = True) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # identifier from the caller
        if create:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m perf.queue.demo_crash")
    for name in ("kind", "database_url", "schema", "delay", "workers"):
        parser.add_argument(name)
    args = parser.parse_args()
    asyncio.run(_child(args.kind, args.database_url, args.schema, float(args.delay), int(args.workers)))

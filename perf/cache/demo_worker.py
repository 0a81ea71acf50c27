"""A cache in another process, for cross-process demonstrations and tests.

``python -m perf.cache.demo_worker REDIS_URL NAMESPACE`` runs a :class:`MultiLevelCache` and
answers one JSON line per command read from stdin: ``fetch KEY``, ``get KEY``,
``stampede KEY N``, ``quit``. Its loader sleeps 0.3 s and returns ``"loaded-by-<pid>"``.
:class:`CacheWorker` starts one and drives it from asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from typing import Any

from perf.cache.multilevel import MultiLevelCache


async def serve(redis_url: str, namespace: str) -> None:
    """The worker's loop: read commands from stdin, print one JSON reply per command."""
    async with MultiLevelCache(redis_url, namespace=namespace, l1_ttl=60) as cache:
        calls = 0

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.3)
            return f"loaded-by-{os.getpid()}"

        def reply(**fields: Any) -> None:
            print(json.dumps({"calls": calls, **fields}), flush=True)

        reply(ready=True, pid=os.getpid())
        while line := await asyncio.to_thread(sys.stdin.readline):
            cmd, *args = line.split()
            if cmd == "fetch":
                r = await cache.fetch(args[0], loader)
                reply(value=r.value, source=r.source)
            elif cmd == "get":
                r = await cache.get(args[0])
                reply(value=r.value, source=r.source, found=r.found)
            elif cmd == "stampede":
                rs = await asyncio.gather(*(cache.fetch(args[0], loader) for _ in range(int(args[1]))))
                reply(values=sorted({r.value for r in rs}))
            elif cmd == "quit":
                break
            else:
                reply(error=f"unknown command {cmd!r}: use fetch KEY, get KEY, stampede KEY N or quit")


class CacheWorker:
    """A ``python -m perf.cache.demo_worker`` subprocess.

    ``async with CacheWorker(url, ns) as w: await w.ask("get k")``.
    """

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = namespace
        self.proc: subprocess.Popen[str] | None = None
        self.pid: int | None = None

    async def start(self, *, timeout: float = 30) -> CacheWorker:
        """Start the process and wait until its cache is ready."""
        self.proc = subprocess.Popen([sys.executable, "-m", "perf.cache.demo_worker", self.redis_url, self.namespace],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = (await self.read(timeout=timeout))["pid"]
        return self

    def send(self, command: str) -> None:
        """Write one command line without waiting for the answer."""
        if self.proc is None or self.proc.stdin is None:
            raise RuntimeError("the worker is not running: call `await worker.start()` first")
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    async def read(self, *, timeout: float = 30) -> dict[str, Any]:
        """The next JSON reply."""
        if self.proc is None or self.proc.stdout is None:
            raise RuntimeError("the worker is not running: call `await worker.start()` first")
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"the worker exited with code {self.proc.poll()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def ask(self, command: str, *, timeout: float = 30) -> dict[str, Any]:
        """Send ``command`` and return its reply."""
        self.send(command)
        return await self.read(timeout=timeout)

    async def close(self, *, timeout: float = 10) -> None:
        """Ask the worker to quit; kill it if it does not within ``timeout`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write("quit\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    async def __aenter__(self) -> CacheWorker:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))

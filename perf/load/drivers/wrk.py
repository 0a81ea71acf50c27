"""``wrk`` as a calibration reference: a C load generator, closed model only.

wrk runs its own loop, so it is not a :class:`~perf.load.drivers.base.Driver`; it
returns the same :class:`~perf.load.results.LoadResult` (its histogram rebuilt from
the percentile spectrum a Lua ``done`` hook prints). When ``wrk`` is not on PATH,
:func:`run_wrk` raises :class:`DriverUnavailable` and :func:`wrk_available` says why.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from perf.load.drivers.base import DriverUnavailable
from perf.load.results import LoadResult
from perf.measure.latency import LatencyHistogram
from perf.services.cpu import pin_process

_LEVELS = [0.0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100.0]
_LUA = """
local levels = {LEVELS}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('PERF-JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d},"percentiles":[', summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout))
  for i, p in ipairs(levels) do
    if i > 1 then io.write(",") end
    local v = (p == 0) and latency.min or ((p == 100) and latency.max or latency:percentile(p))
    io.write(string.format("[%g,%d]", p, v))
  end
  io.write("]}\\n")
end
""".replace("LEVELS", ", ".join(f"{p:g}" for p in _LEVELS))


def wrk_available() -> str | None:
    """None when ``wrk`` can run here, else a message saying how to get it."""
    if shutil.which("wrk") is None:
        return ("wrk is not on PATH: install it (e.g. `apt-get install wrk` or `brew install wrk`) "
                "to calibrate against it; the built-in driver works without it")
    return None


def _histogram(percentiles: list[list[float]], total: int) -> LatencyHistogram:
    hist = LatencyHistogram()
    previous = 0.0
    for level, micros in percentiles:
        share = int(round(total * (level - previous) / 100.0))
        if share > 0:
            hist.record(micros / 1e6, share)
        previous = level
    return hist


async def run_wrk(url: str, *, connections: int = 32, duration: float = 5.0, threads: int = 1,
                  cpu: set[int] | None = None, timeout: float = 2.0) -> LoadResult:
    """Run ``wrk`` against ``url`` for ``duration`` seconds with ``connections`` keep-alive connections."""
    problem = wrk_available()
    if problem:
        raise DriverUnavailable(problem)
    if connections < threads:
        raise ValueError(f"connections ({connections}) must be >= threads ({threads}) for wrk")
    if duration < 1:
        raise ValueError(f"duration must be at least 1 second for wrk, got {duration!r}")
    with tempfile.TemporaryDirectory(prefix="perf-wrk-") as tmp:
        script = Path(tmp) / "done.lua"
        script.write_text(_LUA)
        args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(round(duration))}s",
                f"--timeout={timeout:g}s", "-s", str(script), url]
        started = time.monotonic()
        children_before = _children_cpu()
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        if cpu:
            pin_process(proc.pid, cpu)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=duration + 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    # wrk's own CPU: what the children this process waited for used meanwhile (wrk is the one that
    # ended during the run; servers started by this process are still running and not counted)
    wrk_cpu = _children_cpu() - children_before
    line = next((ln for ln in stdout.decode().splitlines() if ln.startswith("PERF-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {stderr.decode()[-500:] or stdout.decode()[-500:]}")
    data = json.loads(line[len("PERF-JSON "):])
    status_errors = data["errors"].pop("status")
    timeouts = data["errors"].pop("timeout")
    result = LoadResult(driver="wrk", model=f"closed, {connections} connections",
                        duration=data["duration_us"] / 1e6)
    ok = data["requests"] - status_errors
    result.histograms[url] = _histogram(data["percentiles"], data["requests"])
    result.status_counts[200] = ok
    if status_errors:
        result.errors[f"{url}: non-2xx/3xx"] = status_errors
    for kind, n in data["errors"].items():
        if n:
            result.errors[f"{url}: {kind}"] = n
    if timeouts:  # wrk keeps no latency for them: enter each at the timeout, a censored sample
        result.timed_out = timeouts
        result.histograms[url].record(timeout, timeouts)
    # wrk reports totals only: what it sent is what it accounted for.
    result.scheduled = result.accounted
    result.series = {0: [ok, result.failed + timeouts]}
    result.meta["wall"] = time.monotonic() - started
    result.client_cpu = wrk_cpu
    return result


def _children_cpu() -> float:
    """User + system CPU seconds of every child process that has ended and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

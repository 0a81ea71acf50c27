"""Self-calibration: how fast can the generator go against a trivial endpoint?

A generator slower than the server measures itself. Before trusting a result,
measure the generator's ceiling (closed model, many users, a trivial endpoint) and
flag any result within ``margin`` (20%) of it as client-bound: its throughput is a
floor for the server's, and its latencies include the generator's own queueing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from perf.load.drivers import run_wrk, wrk_available
from perf.load.models import ClosedModel
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Scenario
from perf.services.cpu import process_cpu_seconds


@dataclass(frozen=True)
class Calibration:
    """The generator's ceiling (req/s) with ``driver`` against ``url``."""

    driver: str
    url: str
    ceiling: float
    cpu_fraction: float
    result: LoadResult | None = None

    def is_client_bound(self, result: LoadResult, *, margin: float = 0.2) -> bool:
        """True when ``result`` ran within ``margin`` of this ceiling: **the** client-bound rule.

        The CLI's warning and the ``[P1 client]`` recommendation both come from here.
        Generator CPU is not part of it: a busy machine raises CPU without the
        generator being the limit, so a CPU threshold flips with unrelated load.
        """
        if not 0 < margin < 1:
            raise ValueError(f"margin must be a fraction in (0, 1), got {margin!r}")
        if self.ceiling <= 0:  # calibration failed (server down?): nothing to compare against
            return False
        return result.throughput >= (1 - margin) * self.ceiling

    def describe(self) -> str:
        """One line for a notebook or the CLI."""
        return (f"{self.driver}: ceiling {self.ceiling:,.0f} req/s against {self.url} "
                f"(generator CPU {self.cpu_fraction:.0%} of a core)")


async def calibrate(base_url: str, *, path: str = "/", driver: str = "builtin", users: int = 32,
                    duration: float = 2.0) -> Calibration:
    """Measure ``driver``'s ceiling against the trivial endpoint ``base_url + path``.

    ``driver="wrk"`` runs wrk (raises :class:`~perf.load.drivers.DriverUnavailable` when it
    is not installed).
    """
    url = base_url.rstrip("/") + path
    if driver == "wrk":
        result = await run_wrk(url, connections=users, duration=max(duration, 1.0))
        return Calibration("wrk", url, result.throughput, float("nan"), result)
    result = await run_load(base_url, model=ClosedModel(users=users, duration=duration),
                            scenario=Scenario.single(path), driver=driver)
    return Calibration(driver, url, result.throughput, result.client_cpu_fraction, result)


def flag_client_bound(result: LoadResult, calibration: Calibration, *, margin: float = 0.2) -> str | None:
    """A warning when ``result`` is client-bound, else None."""
    if not calibration.is_client_bound(result, margin=margin):
        return None
    return (f"client-bound: {result.throughput:,.0f} req/s is within {margin:.0%} of the generator's "
            f"ceiling {calibration.ceiling:,.0f} req/s ({calibration.driver}); treat it as a floor")


async def compare_drivers(base_url: str, *, drivers: tuple[str, ...] = ("builtin", "httpx", "wrk"),
                          rounds: int = 3, seconds: float = 2.0, users: int = 32, path: str = "/",
                          cpu: set[int] | None = None, server_pid: int | None = None) -> pd.DataFrame:
    """Each driver's ceiling against the same endpoint, interleaved round by round.

    Returns a tidy frame (``driver``, ``round``, ``rps``, ``cpu``: the generator's share of
    a core, ``client_us``: the generator's CPU µs per completed request, wrk's from its own
    process) plus a ``skipped`` attribute (``frame.attrs["skipped"]``: driver ->
    why) for drivers that cannot run here (wrk not on PATH). ``cpu`` pins wrk to those
    cores. With ``server_pid`` (the server's process, all its threads) two more columns:
    ``server_cpu``, its share of a core during the run, and ``server_us``, its CPU µs per
    request: a server near 100% is the limit, and then a driver can only differ by the
    work its pattern of arrivals costs the server.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    skipped: dict[str, str] = {}
    if "wrk" in drivers and wrk_available():
        skipped["wrk"] = wrk_available() or ""
    active = [d for d in drivers if d not in skipped]
    rows = []
    for rnd in range(rounds):
        order = active if rnd % 2 == 0 else active[::-1]  # alternate so drift hits every driver alike
        for driver in order:
            server0, wall0 = (process_cpu_seconds(server_pid) if server_pid else 0.0), time.perf_counter()
            if driver == "wrk":
                result = await run_wrk(base_url.rstrip("/") + path, connections=users,
                                       duration=max(seconds, 1.0), cpu=cpu)
            else:
                result = await run_load(base_url, model=ClosedModel(users=users, duration=seconds),
                                        scenario=Scenario.single(path), driver=driver)
            row = {"driver": driver, "round": rnd, "rps": result.throughput, "cpu": result.client_cpu_fraction,
                   "client_us": result.client_cpu / max(result.completed, 1) * 1e6}
            if server_pid:
                # wall time from before the run: wrk's start-up is in it (errs low, never high)
                used = process_cpu_seconds(server_pid) - server0
                row["server_cpu"] = used / (time.perf_counter() - wall0)
                row["server_us"] = used / max(result.completed, 1) * 1e6
            rows.append(row)
    columns = ["driver", "round", "rps", "cpu", "client_us"] + (["server_cpu", "server_us"] if server_pid else [])
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["skipped"] = skipped
    return frame


def driver_ratios(frame: pd.DataFrame, driver: str, baseline: str) -> float:
    """Median of round-by-round ``rps[driver] / rps[baseline]`` from :func:`compare_drivers`."""
    wide = frame.pivot(index="round", columns="driver", values="rps")
    for name in (driver, baseline):
        if name not in wide.columns:
            raise KeyError(f"no driver {name!r} in the comparison; have {sorted(wide.columns)}")
    return float((wide[driver] / wide[baseline]).median())


async def compare_paths(base_url: str, paths: dict[str, str], *, rounds: int = 3, seconds: float = 1.0,
                        users: int = 16, driver: str = "builtin") -> pd.DataFrame:
    """Closed-model req/s and p50 of several paths on one server, interleaved round by round.

    ``paths`` maps a label to a path (e.g. ``{"bare ASGI": "/bare/hello", "Nexios": "/hello"}``);
    returns a tidy frame (``path``, ``round``, ``rps``, ``p50_ms``).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    if not paths:
        raise ValueError("paths is empty: pass {label: path}")
    rows = []
    labels = list(paths)
    for rnd in range(rounds):
        for label in labels if rnd % 2 == 0 else labels[::-1]:
            result = await run_load(base_url, model=ClosedModel(users=users, duration=seconds),
                                    scenario=Scenario.single(paths[label], name=label), driver=driver)
            p50 = result.overall().percentile(50) * 1e3 if result.overall().count else float("nan")
            rows.append({"path": label, "round": rnd, "rps": result.throughput, "p50_ms": p50})
    return pd.DataFrame(rows, columns=["path", "round", "rps", "p50_ms"])

"""Load drivers behind one interface: built-in (fast), httpx (features), wrk (calibration)."""

from perf.load.drivers.base import Connection, Driver, DriverUnavailable, RequestFailed, Response
from perf.load.drivers.httpx_driver import HttpxDriver
from perf.load.drivers.raw import RawDriver
from perf.load.drivers.wrk import run_wrk, wrk_available

DRIVERS: dict[str, type[Driver]] = {"builtin": RawDriver, "httpx": HttpxDriver}


def create_driver(name: str, base_url: str) -> Driver:
    """A driver by name (``builtin`` or ``httpx``) for ``base_url``; wrk runs via :func:`run_wrk`."""
    if name == "wrk":
        raise ValueError("driver 'wrk' runs its own loop: call perf.load.drivers.run_wrk(url, ...) "
                         "(closed model only)")
    if name not in DRIVERS:
        raise ValueError(f"driver must be one of {sorted(DRIVERS)} (or 'wrk' via run_wrk), got {name!r}")
    return DRIVERS[name](base_url)


__all__ = ["DRIVERS", "Connection", "Driver", "DriverUnavailable", "HttpxDriver", "RawDriver",
           "RequestFailed", "Response", "create_driver", "run_wrk", "wrk_available"]

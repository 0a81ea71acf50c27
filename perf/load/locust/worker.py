"""``python -m perf load-worker --master HOST:PORT``: join a ``perf load --engine locust`` run from any machine.

Starts ``--processes`` Locust workers (default 1) that fetch the generated locustfile from
the master (``locust -f - --worker``), record every request into perf.load's HDR
histograms and send them to the master at the end. The scenario's module must be
importable here too when its paths are functions. Plain ``locust -f FILE --worker
--master-host HOST`` with a file from ``perf load --export-locustfile`` works as well.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from perf.load.locust.runner import parse_master


def worker_command(master: str, *, locustfile: str = "-") -> list[str]:
    """The ``python -m locust ... --worker`` command line for a worker of ``master`` (``HOST:PORT``)."""
    bind = parse_master(master)
    return [sys.executable, "-m", "locust", "-f", locustfile, "--worker", "--master-host", bind.host,
            "--master-port", str(bind.port), "--loglevel", "WARNING"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the highest exit status of the worker processes."""
    parser = argparse.ArgumentParser(prog="python -m perf load-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True, help="HOST:PORT of the master (its --master-bind)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--locustfile", default="-",
                        help="a local locustfile instead of the master's (default '-': fetch it)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not 1 <= args.processes <= 64:
        print(f"error: processes must be 1..64, got {args.processes!r}", file=sys.stderr)
        return 2
    try:
        command = worker_command(args.master, locustfile=args.locustfile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    procs = [subprocess.Popen(command) for _ in range(args.processes)]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        return 130

"""python -m perf load URL: put a URL under load, print percentiles, gate on SLOs.

    python -m perf load http://127.0.0.1:8000/products --rate 400 --duration 20s \\
        --slo "p99<50ms" --slo "errors<0.1%"

Without ``--rate`` the model is closed (``--users`` concurrent users; ``--users 1,2,4,8``
or ``--users 1..64`` sweeps the levels in turn); ``--ramp START`` runs a stress ramp
instead and ``--calibrate PATH`` measures the generator first. Runs of 3 s or more print
a progress line per second on stderr (``--no-progress`` to silence). Every scheduled
request is accounted: completed, failed, timed out or dropped.

Only loopback hosts are loaded unless ``--allow-remote`` says you own the target.
``--json -`` writes only the JSON on stdout; the human summary then goes to stderr, so
``... --json - | jq`` works.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from perf.load.analysis.calibrate import calibrate, flag_client_bound
from perf.load.analysis.recommend import measurements_from, recommend
from perf.load.analysis.slo import Slo, SloError, check_slos, parse_slo
from perf.load.concurrency import parse_users, sweep
from perf.load.drivers import DriverUnavailable, run_wrk
from perf.load.locust.runner import LocustRunError
from perf.load.models import ClosedModel, LoadModel, OpenModel
from perf.load.progress import LineProgress
from perf.load.ramp import rate_steps, stress
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scale import run_event_loop, run_processes
from perf.load.scenarios import Scenario, load_scenario

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Without an ``errors`` SLO a run still fails (exit 1) above this error rate: a load test whose
#: requests mostly failed measured the error path, not the service.
DEFAULT_MAX_ERRORS = "errors<1%"
EXIT_STATUS = f"""exit status:
  0  every SLO met
  1  an SLO was missed; without an errors SLO, also an error rate above the default ({DEFAULT_MAX_ERRORS}:
     pass --slo "errors<N%%" to set your own)
  2  bad arguments (the message says which)
  3  the run is incomplete (--engine locust: a worker was lost or never connected)
  4  nothing was measured: no response arrived (is the server up?)"""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|)\s*$")


def parse_duration(text: str) -> float:
    """``"20s"``, ``"500ms"``, ``"2m"`` or ``"3"`` (seconds) -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration must look like 20s, 500ms, 2m or 3, got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"ms": 1e-3, "s": 1.0, "m": 60.0, "": 1.0}[unit]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m perf load`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m perf load", description=__doc__.splitlines()[0],
                                epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="http://127.0.0.1:PORT/path (the path is the request, unless --scenario)")
    p.add_argument("--rate", type=float, help="open model: arrivals per second (latency from the schedule)")
    p.add_argument("--users", default="16",
                   help="closed model: concurrent users (default 16); 1,2,4,8 or 1..64 sweeps the levels")
    p.add_argument("--think", default="0", help="closed model: think time between a user's requests")
    p.add_argument("--duration", default="10s", help="how long to send (default 10s)")
    p.add_argument("--connections", type=int, default=64, help="open model: max connections (default 64)")
    p.add_argument("--driver", default="builtin", choices=["builtin", "httpx", "wrk"])
    p.add_argument("--processes", type=int, default=1, help="generator processes (results merged)")
    p.add_argument("--scenario", help="package.module:NAME of a perf.load Scenario")
    p.add_argument("--timeout", default="10s", help="per-request timeout (default 10s)")
    p.add_argument("--slo", action="append", default=[],
                   help='e.g. "p99<50ms", "errors<0.1%%", "rps>=400"; without an errors SLO the run '
                        'must still stay under the default error budget, ' + DEFAULT_MAX_ERRORS.replace("%", "%%"))
    p.add_argument("--json", help="write the result as JSON to this path ('-' for stdout: only JSON there, "
                                  "the summary goes to stderr)")
    p.add_argument("--calibrate", metavar="PATH",
                   help="first measure the generator's ceiling against PATH (a trivial endpoint) and flag "
                        "the result as client-bound when it comes within 20%% of it")
    p.add_argument("--ramp", type=float, metavar="START",
                   help="stress: open-model steps from START req/s (x --ramp-factor, each --duration long) "
                        "until an --slo breaks; prints the knee and the max sustainable rate")
    p.add_argument("--ramp-factor", type=float, default=1.5, help="rate multiplier between steps (default 1.5)")
    p.add_argument("--ramp-repeats", type=int, default=3,
                   help="repeat the best passing rate this many times (default 3, at least 3): it is the max "
                        "sustainable rate only if the majority of its repeats sustain it, else the ramp steps down")
    p.add_argument("--warmup", default="1s", help="sweep/ramp: warm-up before the first measured step (default 1s)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines or bars")
    locust = p.add_argument_group(
        "Locust engine", "--engine locust runs the scenario on a Locust master + workers (own processes); "
        "measurement stays perf.load's HDR histograms. Closed model: --users, --think, --spawn-rate. Open "
        "model: --rate over --connections users, each on its own arrival schedule (latency from the due "
        "time). Not expressible: --ramp, stepped rates, --driver/--processes/--calibrate, and a shared "
        "backlog (nothing is dropped: a user that falls behind sends late, counted as late).")
    locust.add_argument("--engine", default="builtin", choices=["builtin", "locust"])
    locust.add_argument("--workers", type=int, default=2, help="local Locust worker processes (default 2)")
    locust.add_argument("--spawn-rate", type=float, help="users started per second (default: all in 1 s)")
    locust.add_argument("--master-bind", metavar="HOST:PORT",
                        help="where the master listens for workers (e.g. 0.0.0.0:5557 for remote ones; "
                             "default 127.0.0.1 on a free port)")
    locust.add_argument("--expect-workers", type=int,
                        help="workers to wait for, local + remote (default --workers)")
    locust.add_argument("--expect-timeout", default="30s", help="how long to wait for them (default 30s)")
    locust.add_argument("--export-locustfile", metavar="PATH",
                        help="write a standalone locustfile for the scenario and model, then exit")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a host other than 127.0.0.1/localhost/::1 (load only servers you own)")
    return p


def _model(args: argparse.Namespace, duration: float) -> LoadModel:
    if args.rate is not None:
        return OpenModel(rate=args.rate, duration=duration, connections=args.connections)
    return ClosedModel(users=parse_users(args.users)[0], duration=duration, think_time=parse_duration(args.think))


def _run(args: argparse.Namespace) -> LoadResult:
    duration, timeout = parse_duration(args.duration), parse_duration(args.timeout)
    base, target = _split(args.url)
    if args.driver == "wrk":
        if args.rate is not None or args.scenario:
            raise ValueError("--driver wrk runs a closed model of one URL: drop --rate and --scenario")
        return run_event_loop(run_wrk(args.url, connections=parse_users(args.users)[0], duration=duration,
                                      timeout=timeout))
    scenario: str | Scenario = args.scenario or Scenario.single(target)
    model = _model(args, duration)
    if args.engine == "locust":
        if args.driver != "builtin" or args.processes != 1:
            raise ValueError("--engine locust spreads load over --workers: drop --driver and --processes")
        from perf.load.locust.runner import run_locust

        return run_locust(base, model=model, scenario=scenario, workers=args.workers,
                          master_bind=args.master_bind, expect_workers=args.expect_workers,
                          expect_timeout=parse_duration(args.expect_timeout), spawn_rate=args.spawn_rate,
                          timeout=timeout)
    if args.processes > 1:
        return run_processes(base, model=model, scenario=scenario, driver=args.driver,
                             processes=args.processes, timeout=timeout)
    scn = load_scenario(scenario) if isinstance(scenario, str) else scenario
    progress = LineProgress() if duration >= 3 and not args.no_progress else None
    return run_event_loop(run_load(base, model=model, scenario=scn, driver=args.driver, timeout=timeout,
                                   progress=progress))


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (urlunsplit((parts.scheme, parts.netloc, "", "", "")),
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def _ramp(args: argparse.Namespace, slos: list[str], out: TextIO) -> int:
    base, target = _split(args.url)
    scenario = load_scenario(args.scenario) if args.scenario else Scenario.single(target)
    rates = rate_steps(args.ramp, factor=args.ramp_factor)
    report = run_event_loop(stress(base, rates=rates, step_seconds=parse_duration(args.duration),
                                   slos=slos or ["p99<100ms", "errors<1%"], scenario=scenario,
                                   driver=args.driver, connections=args.connections,
                                   timeout=parse_duration(args.timeout), warmup=parse_duration(args.warmup) > 0,
                                   repeats=args.ramp_repeats, progress=not args.no_progress))
    print(report.steps.round(3).to_string(), file=out)
    print(report.describe(), file=out)
    return 0 if report.max_sustainable else 1


def _sweep(args: argparse.Namespace, levels: list[int], slos: list[Slo], out: TextIO) -> int:
    if args.rate is not None or args.driver == "wrk" or args.processes > 1:
        raise ValueError("--users with several levels is a closed-model sweep: drop --rate, --driver wrk "
                         "and --processes")
    base, target = _split(args.url)
    scenario = load_scenario(args.scenario) if args.scenario else Scenario.single(target)
    report = run_event_loop(sweep(base, users=levels, duration=parse_duration(args.duration),
                                  think_time=parse_duration(args.think), warmup=parse_duration(args.warmup),
                                  scenario=scenario, driver=args.driver, timeout=parse_duration(args.timeout),
                                  progress=not args.no_progress))
    print(report.levels.round(3).to_string(index=False), file=out)
    print(report.describe(), file=out)
    missed = [f"{users} users: {check.describe()}" for users, result in zip(levels, report.results, strict=True)
              for check in check_slos(result, slos) if not check.met]
    for line in missed:
        print(f"SLO {line}", file=out)
    return 1 if missed else 0


def _with_error_budget(slos: list[Slo]) -> list[Slo]:
    """The user's SLOs, plus the default error budget unless an overall ``errors`` SLO is among them."""
    if any(s.metric == "errors" and s.endpoint is None for s in slos):
        return slos
    return [*slos, parse_slo(DEFAULT_MAX_ERRORS)]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (see ``EXIT_STATUS``: 0 met, 1 SLO missed, 2 usage, 3 incomplete,
    4 nothing measured)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0, bad arguments 2
        return int(exc.code or 0)
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout stays pure JSON under --json -
    try:
        slos = _with_error_budget([parse_slo(s) for s in args.slo])
        host = urlsplit(args.url).hostname
        if not host:
            raise ValueError(f"url must look like http://127.0.0.1:8000/path, got {args.url!r}")
        if host not in _LOOPBACK and not args.allow_remote:
            raise ValueError(f"url host {host!r} is not loopback: pass --allow-remote to load a server you own")
        if args.export_locustfile:
            from perf.load.locust.locustfile import export_locustfile

            path = export_locustfile(args.export_locustfile, args.scenario or Scenario.single(_split(args.url)[1]),
                                     model=_model(args, parse_duration(args.duration)),
                                     timeout=parse_duration(args.timeout))
            print(f"locustfile written to {path}", file=out)
            return 0
        if args.ramp is not None:
            if args.engine == "locust":
                raise ValueError("--ramp runs on the built-in engine only: drop --engine locust")
            return _ramp(args, [s.text for s in slos], out)
        levels = parse_users(args.users)
        if len(levels) > 1:
            return _sweep(args, levels, slos, out)
        calibration = None
        if args.calibrate:
            if args.engine == "locust":
                raise ValueError("--calibrate measures the built-in engine's ceiling: drop --engine locust")
            if args.driver == "wrk":
                raise ValueError("--calibrate measures the built-in or httpx driver; wrk is the reference itself")
            calibration = run_event_loop(calibrate(_split(args.url)[0], path=args.calibrate, driver=args.driver))
            print(calibration.describe(), file=out)
        result = _run(args)
    except (SloError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DriverUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LocustRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(result.describe(), file=out)
    warning = flag_client_bound(result, calibration) if calibration else None
    if warning:
        print(f"warning: {warning}", file=out)
    if result.overall().count:
        print(result.summary().round(3).to_string(), file=out)
    for rec in recommend(measurements_from(result, calibration=calibration)):
        print(rec.describe(), file=out)
    checks = check_slos(result, slos)
    for check in checks:
        print(f"SLO {check.describe()}", file=out)
    if args.json:
        engine = {"engine": result.meta.get("engine", "builtin"), "workers": result.meta.get("workers")}
        text = json.dumps({**engine, **result.to_dict()}, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    if result.meta.get("incomplete"):
        print(f"error: run incomplete: lost workers {', '.join(result.meta.get('lost_workers', []))} "
              "(their requests are missing from the result)", file=sys.stderr)
        return 3
    if result.responses == 0:
        print(f"error: nothing was measured: no response arrived ({result.accounting()}); "
              "is the server up at that URL?", file=sys.stderr)
        return 4
    return 0 if all(c.met for c in checks) else 1

"""Command line: ``python -m perf services up|status|down``, ``workbook``, ``lab``, and technique CLIs.

``python -m perf api ...`` and ``python -m perf load ...`` hand over to
``perf.api.cli`` and ``perf.load.cli`` (each a ``main(argv) -> int``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys

#: Subcommands owned by technique packages: name -> module with ``main(argv) -> int``.
DELEGATED = {"api": "perf.api.cli", "load": "perf.load.cli", "load-worker": "perf.load.locust.worker"}


def _services(args: argparse.Namespace) -> int:
    from perf.services import ServiceUnavailable, ensure_services, services_status, stop_services

    if args.action == "up":
        try:
            handle = ensure_services(persistent=True)
        except ServiceUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        how = f"started in {handle.startup_seconds:.1f}s" if handle.started else "already running"
        print(f"services {how}: {handle.servers}")
        print(f"DATABASE_URL={handle.database_url}")
        print(f"REDIS_URL={handle.redis_url}")
        return 0
    if args.action == "exec":
        command = args.command_args[1:] if args.command_args[:1] == ["--"] else args.command_args
        if not command:
            print("error: `services exec` needs a command, e.g. `services exec -- pytest`", file=sys.stderr)
            return 2
        with ensure_services() as handle:
            if handle.started:
                print(f"[perf] embedded {handle.servers} started in {handle.startup_seconds:.2f}s", flush=True)
            try:
                return subprocess.call(command)
            except KeyboardInterrupt:
                return 130
    if args.action == "status":
        status = services_status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    state = stop_services()
    if state is None:
        print("nothing to stop (using external servers or none running)")
    else:
        users = [u for u in state.get("users", [])]
        print("services stopped" + (f" (processes still attached: {users})" if users else ""))
    return 0


def _workbook(args: argparse.Namespace) -> int:
    from pathlib import Path

    from perf.workbook import list_notebooks, run_workbook

    notebooks = [Path(p).resolve() for p in args.notebooks] or list_notebooks()
    runs = run_workbook(notebooks)
    failed = [r.name for r in runs if not r.ok]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _lab(args: argparse.Namespace) -> int:
    from perf.services import ensure_services
    from perf.workbook import NOTEBOOK_DIR

    with ensure_services() as services:
        print(f"services up: {services.database_url} {services.redis_url}")
        cmd = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={NOTEBOOK_DIR}", *args.lab_args]
        try:
            return subprocess.call(cmd)
        except KeyboardInterrupt:
            return 130


def _slides(args: argparse.Namespace) -> int:
    from perf.config import get_settings
    from perf.export import build_slides
    from perf.workbook import list_notebooks

    notebooks = list_notebooks()
    if args.numbers:
        notebooks = [nb for nb in notebooks if nb.name[:2] in set(args.numbers)]
        if not notebooks:
            print(f"no notebook numbered {' '.join(args.numbers)}; they are "
                  f"{', '.join(nb.name[:2] for nb in list_notebooks())}", file=sys.stderr)
            return 2
    out_dir = get_settings().build_dir / "notebooks"
    for path in build_slides(notebooks, out_dir=out_dir, executed_dir=out_dir):
        print(f"slides: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m perf`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quick", "full"],
                        help="sizes and durations (default: $PERF_PROFILE or quick)")
    sub = parser.add_subparsers(dest="command", required=True)
    services = sub.add_parser("services", help="start, inspect or stop the embedded PostgreSQL + Redis")
    services.add_argument("action", choices=["up", "status", "down", "exec"],
                          help="exec: run a command with services up, stopping them after if it started them")
    services.add_argument("command_args", nargs=argparse.REMAINDER, help="with exec: -- COMMAND ...")
    services.set_defaults(func=_services)
    workbook = sub.add_parser("workbook", help="execute every notebook headless into build/notebooks")
    workbook.add_argument("notebooks", nargs="*", help="notebook paths (default: all, in order)")
    workbook.set_defaults(func=_workbook)
    lab = sub.add_parser("lab", help="open JupyterLab on notebooks/ with services up")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER, help="extra arguments for jupyter lab")
    lab.set_defaults(func=_lab)
    slides = sub.add_parser("slides", help="reveal.js slides next to the workbook's HTML (build/notebooks)")
    slides.add_argument("numbers", nargs="*", help="notebook numbers, e.g. 01 05 (default: all)")
    slides.set_defaults(func=_slides)
    for name in DELEGATED:
        sub.add_parser(name, help=f"see `python -m perf {name} --help`", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m perf``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Technique CLIs parse their own arguments.
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    if args.profile:
        os.environ["PERF_PROFILE"] = args.profile  # read once by perf.config, inherited by kernels
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

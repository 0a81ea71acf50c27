"""Command line: ``python -m perf services up|status|down|exec``, ``workbook``, ``lab``, ``reset``, technique CLIs.

``python -m perf api ...`` and ``python -m perf load ...`` hand over to
``perf.api.cli`` and ``perf.load.cli`` (each a ``main(argv) -> int``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Subcommands owned by technique packages: name -> module with ``main(argv) -> int``.
DELEGATED = {"api": "perf.api.cli", "load": "perf.load.cli", "load-worker": "perf.load.locust.worker",
             "runs": "perf.runs.cli"}


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
            return supervise(subprocess.Popen(command))
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


def _pick_notebooks(names: list[str]) -> list[Path] | str:
    """The notebooks ``names`` asks for (numbers such as ``05``, or paths), all when empty; or the
    message naming what matched nothing."""
    from perf.workbook import list_notebooks

    known = list_notebooks()
    picked: list[Path] = []
    for name in names:
        by_number = [nb for nb in known if nb.name[:2] == name]
        if by_number:
            picked += by_number
        elif Path(name).is_file():
            picked.append(Path(name).resolve())
        else:
            return (f"no notebook {name!r}: give a number ({' '.join(nb.name[:2] for nb in known)}) "
                    "or a notebook's path")
    return picked or known


def _workbook(args: argparse.Namespace) -> int:
    from perf.workbook import run_workbook

    notebooks = _pick_notebooks(args.notebooks)
    if isinstance(notebooks, str):
        print(notebooks, file=sys.stderr)
        return 2
    runs = run_workbook(notebooks)
    failed = [r.name for r in runs if not r.ok]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def passthrough(args: list[str]) -> list[str]:
    """Options for the tool underneath, untouched except that the first literal ``--`` is dropped.

    >>> passthrough(["--no-browser", "--", "--port", "9999"])
    ['--no-browser', '--port', '9999']
    """
    rest = list(args)
    if "--" in rest:
        rest.remove("--")
    return rest


def supervise(proc: subprocess.Popen[bytes], *, ready: Callable[[], None] | None = None) -> int:
    """Wait for ``proc``; forward SIGTERM to it and let it decide about Ctrl-C; return its exit code.

    A terminal's Ctrl-C reaches the whole process group, so the child sees it already (Jupyter
    asks for confirmation): this process keeps waiting rather than leaving the child orphaned
    and pulling the services out from under it.
    """
    def forward(signum: int, frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        if ready is not None:
            threading.Thread(target=ready, daemon=True, name="ready").start()
        while True:
            try:
                code = proc.wait()
                return code if code >= 0 else 128 - code
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_lab_url(proc: subprocess.Popen[bytes], *, timeout: float = 120.0) -> None:
    from jupyter_core.paths import jupyter_runtime_dir

    info_file = Path(jupyter_runtime_dir()) / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        token = f"?token={info['token']}" if info.get("token") else ""
        print(f"[perf] JupyterLab: {info['url'].rstrip('/')}/lab{token}", flush=True)
        return


def _lab(lab_args: list[str]) -> int:
    from perf.services import ServiceUnavailable, ensure_services
    from perf.workbook import NOTEBOOK_DIR

    args = passthrough(lab_args)
    # Another folder given on the command line replaces notebooks/ (Jupyter refuses two).
    own_dir = any(a.startswith(("--notebook-dir", "--ServerApp.root_dir")) for a in args)
    cmd = [sys.executable, "-m", "jupyterlab", *([] if own_dir else [f"--notebook-dir={NOTEBOOK_DIR}"]), *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        cmd.append("--allow-root")  # containers and cloud VMs run as root; Jupyter refuses without it
    if {"-h", "--help", "--help-all", "--version"} & set(args):
        return subprocess.call(cmd)
    try:
        services = ensure_services()
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with services:
        print(f"[perf] services up: {services.database_url} {services.redis_url}", flush=True)
        print("+ " + " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd)
        code = supervise(proc, ready=lambda: _print_lab_url(proc))
    print(f"[perf] JupyterLab exited ({code}); services released", flush=True)
    return code


def _reset(args: argparse.Namespace) -> int:
    import asyncio

    from perf.config import get_settings
    from perf.reset import apply_reset, plan_reset
    from perf.services import ensure_services

    settings = get_settings()
    runs_dir = settings.build_dir / "runs" if args.runs else None
    with ensure_services(settings) as services:
        where = "external servers (DATABASE_URL / REDIS_URL)" if not settings.embedded else "embedded servers"
        plan = asyncio.run(plan_reset(services.database_url, services.redis_url, runs_dir=runs_dir,
                                      foreign_server=not services.embedded_postgres))
        for line in plan.describe_kept():
            print(f"kept {line}")
        if plan.empty:
            print(f"nothing to reset on the {where}")
            return 0
        print(f"reset on the {where} will remove:")
        for line in plan.describe():
            print(f"  {line}")
        if not args.yes:
            if not sys.stdin.isatty():
                print("not confirmed: pass --yes to reset without a prompt", file=sys.stderr)
                return 1
            if input("remove all of that? [y/N] ").strip().lower() not in {"y", "yes"}:
                print("nothing removed")
                return 1
        removed = asyncio.run(apply_reset(plan, services.database_url, services.redis_url))
    print("removed:")
    for line in removed.describe():
        print(f"  {line}")
    return 0


def _slides(args: argparse.Namespace) -> int:
    from perf.config import get_settings
    from perf.export import build_slides

    notebooks = _pick_notebooks(args.numbers)
    if isinstance(notebooks, str):
        print(notebooks, file=sys.stderr)
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
    workbook.add_argument("notebooks", nargs="*", help="notebook numbers (05) or paths (default: all, in order)")
    workbook.set_defaults(func=_workbook)
    slides = sub.add_parser("slides", help="reveal.js slides next to the workbook's HTML (build/notebooks)")
    slides.add_argument("numbers", nargs="*", help="notebook numbers, e.g. 01 05 (default: all)")
    slides.set_defaults(func=_slides)
    reset = sub.add_parser("reset", help="drop the schemas, Redis keys (and runs) the workbook created")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument("--runs", action="store_true", help="also remove the saved runs (build/runs)")
    reset.set_defaults(func=_reset)
    sub.add_parser("lab", help="JupyterLab on notebooks/ with services up; every option goes to jupyter lab",
                   add_help=False)
    for name in DELEGATED:
        sub.add_parser(name, help=f"see `python -m perf {name} --help`", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m perf``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] == "--profile" or argv[0].startswith("--profile=")):
        # Taken off by hand, so that everything after the command is left to that command.
        flag = argv.pop(0)
        value = flag.partition("=")[2] or (argv.pop(0) if argv else "")
        if value not in ("quick", "full"):
            build_parser().error(f"--profile {value!r}: use quick or full")
        os.environ["PERF_PROFILE"] = value  # read once by perf.config, inherited by kernels
    # Commands that hand every option on: technique CLIs parse their own, lab gives them to Jupyter.
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]) or 0)
    if argv and argv[0] == "lab":
        return _lab(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

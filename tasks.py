#!/usr/bin/env python3
"""One entry point for people and CI; needs only Python 3.11+ and pip.

    python3 tasks.py test        # install (first time), then pytest + nbval over notebooks, quick profile
    python3 tasks.py test --fast # the fast tier: no notebook, no process started (minutes); says what it left out
    python3 tasks.py check       # the quality gate: ruff (lint + import order) and mypy (strict)
    python3 tasks.py workbook    # install, then execute every notebook into build/notebooks (+ HTML)
    python3 tasks.py lab         # install, then JupyterLab on notebooks/ with services up (--no-browser, --port N)
    python3 tasks.py slides [NN] # reveal.js slides (from the last workbook run) into build/notebooks
    python3 tasks.py runs [compare A B]  # list saved runs; compare two runs figure by figure, with noise bands
    python3 tasks.py runs audit [RUN]    # judge every claim a run's notebooks stated again (claims.json)
    python3 tasks.py reset       # drop the schemas and Redis keys the notebooks and the API made (--yes, --runs)
    python3 tasks.py services up|status|down
    python3 tasks.py bench NAME  # python -m perf.bench.NAME (cache, db, pool, compression, api, load, queue, ...)
    python3 tasks.py setup       # only create .venv and install requirements + perf (editable)

Every option after the command goes, untouched, to the tool underneath (pytest, ruff,
jupyter lab, python -m perf ...): `tasks.py lab --no-browser --port 8888`, `tasks.py test -x -k cache`.
A literal `--` right after the command is dropped, never passed on.
Set PERF_PROFILE=full for real numbers. DATABASE_URL / REDIS_URL point at existing servers.
PERF_VENV=DIR installs into and runs from DIR instead of .venv (CI keeps one per Python version).
The install uses uv (which pip installs first) and falls back to pip; PERF_INSTALLER=pip uses pip alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / os.environ.get("PERF_VENV", ".venv")
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".perf-installed"


def run(cmd: list[object]) -> int:
    """Run ``cmd`` in the project folder and return its exit code (``perf.__main__.supervise``
    does the same for ``python -m perf``: this script runs before .venv exists, so it cannot import it).

    SIGTERM is forwarded to it; Ctrl-C is left to it (the terminal sends it to the whole
    process group), so a tool that shuts down cleanly (JupyterLab, the services) can.
    """
    args = [str(c) for c in cmd]
    print("+ " + " ".join(args), flush=True)
    proc = subprocess.Popen(args, cwd=ROOT)

    def forward(signum: int, frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = proc.wait()
                return code if code >= 0 else 128 - code
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def setup() -> None:
    """Create .venv and (re)install when requirements.txt or pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  # this script runs under whatever python3 is first
        sys.exit(f"Python 3.11+ is needed, this is {sys.version.split()[0]}")
    chosen = os.environ.get("PERF_INSTALLER", "uv")
    if chosen not in ("uv", "pip"):
        sys.exit(f"PERF_INSTALLER={chosen!r}: use 'uv' (the default; falls back to pip) or 'pip'")
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()
                            + (ROOT / "pyproject.toml").read_bytes()
                            + sys.version.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    t0 = time.perf_counter()
    if PY.exists() and _venv_python_version() not in (None, f"{sys.version_info[0]}.{sys.version_info[1]}"):
        sys.exit(f"{VENV} was made by Python {_venv_python_version()}, this is {sys.version.split()[0]}: "
                 f"set PERF_VENV=.venv-{sys.version_info[0]}.{sys.version_info[1]} (or remove {VENV.name})")
    if not PY.exists():
        if run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("Creating .venv failed: on Debian/Ubuntu install python3-venv (apt-get install python3-venv).")
    installer = _install_with_uv() if chosen == "uv" else None
    if installer is None:
        installer = "pip"
        pip = [PY, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
        if run([*pip, "-r", "requirements.txt"]) != 0:
            sys.exit("Installing requirements.txt failed (see the pip output above).")
        if run([*pip, "--no-deps", "-e", "."]) != 0:
            sys.exit("Installing the perf package failed (see the pip output above).")
    STAMP.write_text(digest)
    print(f"installed in {time.perf_counter() - t0:.0f}s ({installer})", flush=True)


#: The installer: uv resolves, downloads, unpacks and compiles in parallel, so requirements.txt
#: installs in well under a minute where pip takes two to three. pip installs uv itself, so the
#: machine still needs only Python and pip.
UV = "uv==0.13.9"
#: pip's settings that choose where packages come from, as uv's flags (uv does not read pip.conf).
_PIP_TO_UV = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
              "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}


def _install_with_uv() -> str | None:
    """Install requirements.txt and perf with uv; "uv" on success, None to fall back to pip (says why)."""
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check"]
    if run([*pip, "install", "--quiet", UV]) != 0:
        print(f"tasks.py: pip could not install {UV}; installing with pip instead", flush=True)
        return None
    uv = VENV / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    flags, env = _pip_sources(pip)
    # pip takes a pinned version from whichever index has it; uv's default stops at the first index
    # that knows the name, so a mirror holding older releases would fail the pins.
    # --compile-bytecode, as pip does: with PYTHONDONTWRITEBYTECODE set (this CI machine sets it) nothing
    # compiled at import is kept, and every server, kernel and test process compiled its imports again
    # (the full suite took 1.4x as long)
    base = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", PY,
            "--index-strategy", "unsafe-best-match", *flags]
    for args in (["-r", "requirements.txt"], ["--no-deps", "-e", "."]):
        if subprocess.call([*map(str, base), *args], cwd=ROOT, env={**os.environ, **env}) != 0:
            print(f"tasks.py: uv could not install {' '.join(args)} (see above); installing with pip instead",
                  flush=True)
            return None
    return "uv"


def _pip_sources(pip: list[str]) -> tuple[list[str], dict[str, str]]:
    """pip's configured indexes, find-links, constraints and certificate (pip.conf and PIP_*) as uv flags and env."""
    listed = subprocess.run([*pip, "config", "list"], capture_output=True, text=True, cwd=ROOT).stdout
    return _uv_sources(listed)


def _uv_sources(listed: str) -> tuple[list[str], dict[str, str]]:
    """uv's flags and environment for the output of ``pip config list``."""
    flags: list[str] = []
    env: dict[str, str] = {}
    for line in listed.splitlines():  # global.extra-index-url='file:///a file:///b'
        key, _, value = line.partition("=")
        name, value = key.rsplit(".", 1)[-1], value.strip().strip("'\"")
        if name in _PIP_TO_UV:
            for item in value.split():
                flags += [_PIP_TO_UV[name], item]
        elif name == "cert" and value:
            env.setdefault("SSL_CERT_FILE", value)
        elif name == "no-index" and value.lower() in ("1", "true", "yes", "on"):
            flags.append("--no-index")
    return flags, env


def _venv_python_version() -> str | None:
    """``"3.11"``: the Python version .venv was made with (from its ``pyvenv.cfg``), or None if unknown."""
    try:
        for line in (VENV / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return ".".join(value.strip().split(".")[:2])
    except OSError:
        pass
    return None


LINTED = ["perf", "tests", "tools", "tasks.py", "notebooks/_src"]


def check(rest: list[str]) -> int:
    """ruff over the code and the tests, then mypy (strict, config in pyproject.toml) over perf/, tools/, tasks.py."""
    lint = run([PY, "-m", "ruff", "check", *rest, *LINTED])
    types = run([PY, "-m", "mypy"])
    print("check: " + ("passed" if lint == types == 0 else "FAILED (see above)"), flush=True)
    return lint or types


COMMANDS = ("test", "check", "workbook", "lab", "slides", "runs", "reset", "services", "bench", "setup")


def build_parser() -> argparse.ArgumentParser:
    """``tasks.py COMMAND [options for the tool underneath]``: argparse takes the command only."""
    parser = argparse.ArgumentParser(prog="python3 tasks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("options", nargs=argparse.REMAINDER, help="passed on untouched")
    return parser


def main(argv: list[str]) -> int:
    if not argv:
        build_parser().print_help()
        return 0
    args = build_parser().parse_args(argv)
    command, rest = args.command, list(args.options)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    setup()
    perf: list[object] = [PY, "-m", "perf"]
    if command == "setup":
        return 0
    if command == "test":
        t0 = time.perf_counter()
        if "--fast" in rest:  # the fast tier: tests/_tiers.py marks what starts a process or runs a notebook
            rest = [opt for opt in rest if opt != "--fast"] + ["-m", "not slow"]
        elif not rest:  # the whole suite on three workers (tests/_workers.py): much of it waits (outages,
            rest = ["-n", "3"]  # timeouts, slow clients), so even two cores keep three busy
        code = run([*perf, "services", "exec", "--", PY, "-m", "pytest", *rest])
        print(f"test command finished in {time.perf_counter() - t0:.0f}s (exit {code})", flush=True)
        return code
    if command == "check":
        return check(rest)
    if command == "bench":
        benches = sorted(p.stem for p in (ROOT / "perf" / "bench").glob("*.py") if p.stem != "__init__")
        if not rest or rest[0] not in benches:
            print(f"usage: python3 tasks.py bench NAME [args]  (NAME: {', '.join(benches)})")
            return 2
        return run([PY, "-m", f"perf.bench.{rest[0]}", *rest[1:]])
    # workbook, lab, slides, runs, reset, services: `python -m perf COMMAND ...` with the options as given
    return run([*perf, command, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

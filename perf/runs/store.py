"""A run: one folder per workbook, notebook or benchmark run, holding its data and charts.

Layout under ``<build_dir>/runs/<run id>/``::

    run.json                  id, start/end, profile, git commit + dirty flag, machine,
                              service versions, notebooks and benchmarks it covers
    <source>/frames.json      the schema: per frame its file, title, kind and column units
    <source>/<frame>.csv      one tidy table per measured frame
    <source>/<frame>.png      the charts of that source

``<source>`` is the notebook (``01_caching``) or benchmark (``perf.bench.cache``) that
wrote them, so a workbook run holds every notebook side by side.

Frames are CSV rather than Parquet: a reader opens them in any editor or spreadsheet,
``git diff`` shows what changed between two runs, and writing them needs nothing beyond
pandas. The frames are small (summaries, not raw samples), so size does not matter.

The run of a process is found once (:func:`current_run`): the one a parent process
handed over (``PERF_RUN_ID`` / ``PERF_RUN_SOURCE``, set by ``perf.workbook`` for each
kernel), else a new one named after the notebook or script. :func:`active_run` finds
it without starting one (what drawing a chart does). Test runs set
``PERF_BUILD_DIR`` to a temporary folder (the repository's ``conftest.py``), so they
never touch a user's runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from perf.config import PROJECT_ROOT, get_settings
from perf.measure.machine import machine_info

#: Environment handed from a runner (``perf.workbook``) to the processes it starts.
RUN_ID_ENV = "PERF_RUN_ID"
RUN_SOURCE_ENV = "PERF_RUN_SOURCE"
#: Columns of a :func:`perf.measure.summarize` frame that carry the value's unit.
SUMMARY_STATS = ("median", "min", "max", "q1", "q3", "iqr")
_FALLBACK_SOURCE = "notebook"


def slug(text: str) -> str:
    """A file-name-safe form of ``text``: ``"One round trip: PG"`` -> ``"one-round-trip-pg"``."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-")[:80] or "frame"


def runs_dir() -> Path:
    """Where runs live: ``<build_dir>/runs`` (``PERF_BUILD_DIR`` moves it)."""
    return get_settings().build_dir / "runs"


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the working tree at ``root``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def new_run_id(label: str, *, directory: Path | None = None) -> str:
    """``20250114-093012-<label>``: sortable by start time, unique inside ``directory``."""
    directory = directory or runs_dir()
    base = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{slug(label)}"
    run_id, n = base, 1
    while (directory / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _units(frame: pd.DataFrame, unit: str | None) -> dict[str, str]:
    units: dict[str, str] = {}
    for column in frame.columns:
        name = str(column)
        if name in SUMMARY_STATS and unit is not None:
            units[name] = unit
        elif name == "n" or name == "count":
            units[name] = "count"
        elif name.endswith("_pct"):
            units[name] = "%"
        elif name.startswith(("ratio", "speedup")):
            units[name] = "x"
        else:
            match = re.search(r"_(s|ms|us|µs|ns|mb_s|qps|rps)$", name)
            units[name] = match.group(1) if match else ""
    return units


class Run:
    """One run folder; create with :func:`start_run` or get the process's with :func:`current_run`."""

    def __init__(self, path: Path, *, source: str) -> None:
        self.path = path
        self.source = source

    @property
    def id(self) -> str:
        """The run id (the folder's name)."""
        return self.path.name

    @property
    def source_dir(self) -> Path:
        """``<run>/<source>/``, created on demand."""
        folder = self.path / self.source
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def meta(self) -> dict[str, Any]:
        """The contents of ``run.json``."""
        return dict(json.loads((self.path / "run.json").read_text(encoding="utf-8")))

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` (lists of sources are unioned) and stamp ``ended``."""
        meta = self.meta()
        for key, value in fields.items():
            if isinstance(value, list) and isinstance(meta.get(key), list):
                meta[key] = meta[key] + [v for v in value if v not in meta[key]]
            elif isinstance(value, dict) and isinstance(meta.get(key), dict):
                meta[key] = {**meta[key], **value}
            else:
                meta[key] = value
        meta["ended"] = _now()
        _write_json(self.path / "run.json", meta)

    def schema(self, source: str | None = None) -> dict[str, Any]:
        """``frames.json`` of ``source`` (default: this process's): frame name -> file, kind, units."""
        path = self.path / (source or self.source) / "frames.json"
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    def record(self, name: str, frame: pd.DataFrame, *, unit: str | None = None,
               title: str | None = None) -> Path:
        """Save ``frame`` as ``<source>/<name>.csv`` and describe its columns in ``frames.json``.

        ``unit`` is the unit of the value a :func:`perf.measure.summarize` frame summarises
        (``"s"``, ``"rows/s"``); other columns take theirs from their names (``*_ms``, ``n``).
        A frame with ``median``, ``q1`` and ``q3`` is a *summary*: ``runs compare`` judges
        its medians against their spread.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__} for {name!r}")
        key = slug(name)
        tidy = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
        tidy.columns = [str(c) for c in tidy.columns]
        path = self.source_dir / f"{key}.csv"
        tidy.to_csv(path, index=False)
        kind = "summary" if {"median", "q1", "q3"} <= set(tidy.columns) else "table"
        keys = [str(c) for c in tidy.columns if not pd.api.types.is_numeric_dtype(tidy[c])]
        schema = self.schema()
        schema[key] = {"file": path.name, "title": title or name, "kind": kind, "keys": keys,
                       "units": _units(tidy, unit), "rows": len(tidy)}
        _write_json(self.source_dir / "frames.json", schema)
        self.update()
        return path

    def save_chart(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``<source>/<name>.png``."""
        path = self.source_dir / f"{slug(name)}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.update()
        return path

    def name_source(self, source: str) -> None:
        """Give this process's source its real name (a notebook that could not be detected)."""
        if source == self.source:
            return
        old = self.path / self.source
        new = self.path / source
        if old.exists() and not new.exists():
            old.rename(new)
        self.source = source
        self._register_source()

    def _register_source(self) -> None:
        field = "benchmarks" if self.source.startswith("perf.bench") else "notebooks"
        self.update(**{field: [self.source]})

    def __repr__(self) -> str:
        return f"<Run {self.id} source={self.source!r} at {self.path}>"


def start_run(label: str, *, kind: str, source: str | None = None, directory: Path | None = None,
              info: Mapping[str, Any] | None = None) -> Run:
    """Create ``<directory>/<id>/run.json`` (``kind``: workbook, notebook, benchmark, session)."""
    directory = directory or runs_dir()
    directory.mkdir(parents=True, exist_ok=True)
    while True:  # two processes may pick the same free id in the same second: the one whose mkdir loses retries
        run_id = new_run_id(label, directory=directory)
        path = directory / run_id
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    machine = dict(info or machine_info())
    meta: dict[str, Any] = {
        "id": run_id, "kind": kind, "started": _now(), "ended": None,
        "profile": get_settings().profile, "git": git_state(), "machine": machine,
        "services": {k: machine.pop(k) for k in ("postgres", "redis") if k in machine},
        "notebooks": [], "benchmarks": [],
    }
    _write_json(path / "run.json", meta)
    run = Run(path, source=source or label)
    if source or kind in ("notebook", "benchmark"):
        run._register_source()
    return run


def open_run(run_id: str, *, directory: Path | None = None, source: str = "session") -> Run:
    """An existing run by id (the folder name); raises ``FileNotFoundError`` naming the runs folder."""
    directory = directory or runs_dir()
    path = directory / run_id
    if not (path / "run.json").exists():
        known = ", ".join(p.name for p in list_run_dirs(directory)[-5:]) or "none"
        raise FileNotFoundError(f"no run {run_id!r} in {directory} (latest: {known}); "
                                "`python3 tasks.py runs` lists them")
    return Run(path, source=source)


def list_run_dirs(directory: Path | None = None) -> list[Path]:
    """Run folders, oldest first."""
    directory = directory or runs_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if (p / "run.json").exists())


def _detect_source() -> tuple[str, str]:
    """(kind, source) of this process: a notebook kernel, a ``perf.bench`` script, or a session."""
    main = sys.modules.get("__main__")
    if "ipykernel" in sys.modules:
        ns = getattr(main, "__dict__", {})
        for key in ("__session__", "__vsc_ipynb_file__"):
            value = ns.get(key)
            if isinstance(value, str) and value.endswith(".ipynb"):
                return "notebook", Path(value).stem
        return "notebook", _FALLBACK_SOURCE
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None) or Path(sys.argv[0] or "session").stem
    return ("benchmark" if name.startswith("perf.bench") else "session"), name


_current: Run | None = None


def active_run() -> Run | None:
    """This process's run if it has one, else None: never starts one (no folder, no git, no machine facts).

    The run already in use, or one a runner (:mod:`perf.workbook`) handed over, joined here.
    Drawing a chart records into it (:mod:`perf.charts`); :func:`current_run` starts one.
    """
    global _current
    if _current is None:
        # A runner (perf.workbook) hands its run to each kernel it starts; read once, here.
        run_id = os.environ.get(RUN_ID_ENV, "").strip()
        if run_id and (runs_dir() / run_id / "run.json").exists():
            _current = open_run(run_id, source=_source())
            _current._register_source()
    return _current


def current_run() -> Run:
    """This process's run: the :func:`active_run`, else a new one (a folder, git state, machine facts)."""
    global _current
    run = active_run()
    if run is None:
        kind, _ = _detect_source()
        source = _source()
        run = _current = start_run(source, kind=kind, source=source)
    return run


def _source() -> str:
    """The name this process records under: the runner's (``PERF_RUN_SOURCE``), else the detected one."""
    return os.environ.get(RUN_SOURCE_ENV, "").strip() or _detect_source()[1]


def set_current_run(run: Run | None) -> None:
    """Make ``run`` this process's run (``None``: find or create one again on next use)."""
    global _current
    _current = run


def record(name: str, frame: pd.DataFrame, *, unit: str | None = None, title: str | None = None) -> Path:
    """Save ``frame`` into the current run: the one call a notebook or benchmark needs.

    >>> record("round-trip", comparison.summary(), unit="s")   # doctest: +SKIP
    """
    return current_run().record(name, frame, unit=unit, title=title)

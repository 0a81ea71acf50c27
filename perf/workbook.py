"""Run the whole workbook headless: every notebook in order, services up once, one run.

The workbook run is a folder ``<build_dir>/runs/<run id>/`` (see :mod:`perf.runs`):
every kernel joins it, so each notebook's frames and charts land in
``<run>/<notebook>/`` and its executed HTML beside them. The latest executed copies
(``.ipynb``) and HTML also land in ``<build_dir>/notebooks``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from perf.config import PROJECT_ROOT, Settings, get_settings
from perf.export import export_html
from perf.measure.machine import collect_machine_info
from perf.runs.store import RUN_ID_ENV, RUN_SOURCE_ENV, start_run
from perf.services import ensure_services

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


@dataclass
class NotebookRun:
    """Outcome of one executed notebook."""

    name: str
    seconds: float
    ok: bool
    executed: Path
    html: Path | None
    error: str | None = None


def list_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The workbook's notebooks in teaching order (by file name)."""
    return sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))


def execute_notebook(path: Path, out_dir: Path, *, timeout: int = 1800, kernel_name: str = "python3",
                     env: Mapping[str, str] | None = None) -> NotebookRun:
    """Execute one notebook with nbclient (cwd = its folder); write the executed copy and HTML.

    ``env`` is the kernel's environment (default: this process's).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)  # nbformat ships no types
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    error = None
    # The kernel's own stderr (startup warnings, crashes) goes to a log beside the
    # executed copy instead of through the progress lines.
    with open(out_dir / f"{path.stem}.kernel.log", "wb") as kernel_log:
        try:
            client.execute(stdout=kernel_log, stderr=kernel_log, env=dict(env or os.environ))
        except CellExecutionError as exc:
            error = str(exc).splitlines()[-1] if str(exc) else repr(exc)
    seconds = time.perf_counter() - t0
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    html_path = out_dir / (path.stem + ".html")
    export_html(nb, html_path)  # computed prose once: its output, not the f-string behind it
    return NotebookRun(path.name, seconds, error is None, executed, html_path, error)


def run_workbook(notebooks: list[Path] | None = None, *, settings: Settings | None = None,
                 stream: TextIO = sys.stdout) -> list[NotebookRun]:
    """Bring services up once, execute ``notebooks`` (default: all) in order into one run, print progress."""
    settings = settings or get_settings()
    notebooks = notebooks or list_notebooks()
    out_dir = settings.build_dir / "notebooks"
    runs: list[NotebookRun] = []
    with ensure_services(settings) as services:
        if services.started:
            print(f"services: started embedded PostgreSQL + Redis in {services.startup_seconds:.1f}s", file=stream)
        else:
            print("services: reusing running servers", file=stream)
        info = asyncio.run(collect_machine_info(database_url=services.database_url, redis_url=services.redis_url))
        run = start_run("workbook", kind="workbook", info=info)
        run.update(notebooks=[p.stem for p in notebooks])
        print(f"run: {run.id} ({run.path})", file=stream)
        # Kernels inherit the environment: they find the same embedded pair, or the same URLs.
        os.environ["PERF_PROFILE"] = settings.profile
        for index, path in enumerate(notebooks, 1):
            print(f"[{index}/{len(notebooks)}] {path.name} ...", end="", flush=True, file=stream)
            env = {**os.environ, RUN_ID_ENV: run.id, RUN_SOURCE_ENV: path.stem}
            result = execute_notebook(path, out_dir, env=env)
            runs.append(result)
            if result.html is not None:
                (run.path / path.stem).mkdir(exist_ok=True)
                shutil.copy2(result.html, run.path / path.stem / result.html.name)
            status = "ok" if result.ok else f"FAILED: {result.error}"
            print(f" {status} ({result.seconds:.1f}s)", file=stream, flush=True)
        run.update(outcome={r.name: {"ok": r.ok, "seconds": round(r.seconds, 1), "error": r.error} for r in runs})
    print(f"\nExecuted notebooks and HTML: {out_dir}", file=stream)
    print(f"This run's frames, charts and HTML: {run.path}", file=stream)
    print("Compare with an earlier run: python3 tasks.py runs compare <earlier id> " + run.id, file=stream)
    return runs

"""Run the whole workbook headless: every notebook in order, services up once.

Executed copies (``.ipynb``) and HTML land in ``<build_dir>/notebooks``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from perf.config import PROJECT_ROOT, Settings, get_settings
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


def execute_notebook(path: Path, out_dir: Path, *, timeout: int = 1800, kernel_name: str = "python3") -> NotebookRun:
    """Execute one notebook with nbclient (cwd = its folder); write the executed copy and HTML."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    error = None
    # The kernel's own stderr (startup warnings, crashes) goes to a log beside the
    # executed copy instead of through the progress lines.
    with open(out_dir / f"{path.stem}.kernel.log", "wb") as kernel_log:
        try:
            client.execute(stdout=kernel_log, stderr=kernel_log)
        except CellExecutionError as exc:
            error = str(exc).splitlines()[-1] if str(exc) else repr(exc)
    seconds = time.perf_counter() - t0
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    html_path = out_dir / (path.stem + ".html")
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return NotebookRun(path.name, seconds, error is None, executed, html_path, error)


def run_workbook(notebooks: list[Path] | None = None, *, settings: Settings | None = None,
                 stream=sys.stdout) -> list[NotebookRun]:  # noqa: ANN001
    """Bring services up once, execute ``notebooks`` (default: all) in order, print progress."""
    settings = settings or get_settings()
    notebooks = notebooks or list_notebooks()
    out_dir = settings.build_dir / "notebooks"
    runs: list[NotebookRun] = []
    with ensure_services(settings) as services:
        if services.started:
            print(f"services: started embedded PostgreSQL + Redis in {services.startup_seconds:.1f}s", file=stream)
        else:
            print("services: reusing running servers", file=stream)
        # Kernels inherit the environment: they find the same embedded pair, or the same URLs.
        os.environ["PERF_PROFILE"] = settings.profile
        for index, path in enumerate(notebooks, 1):
            print(f"[{index}/{len(notebooks)}] {path.name} ...", end="", flush=True, file=stream)
            run = execute_notebook(path, out_dir)
            runs.append(run)
            status = "ok" if run.ok else f"FAILED: {run.error}"
            print(f" {status} ({run.seconds:.1f}s)", file=stream, flush=True)
    print(f"\nExecuted notebooks and HTML: {out_dir}", file=stream)
    print(f"Charts: {settings.build_dir / 'charts'}", file=stream)
    return runs

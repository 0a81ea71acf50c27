"""Build a notebook from a compact Python description (used by maintainers, not at run time).

    python tools/nbbuild.py notebooks/_src/00_setup.py notebooks/00_setup.ipynb [--execute]

With ``--execute`` the notebook is run once (services must be reachable) and the
outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` are stored, so nbval has a
reference to compare against; every other cell is saved without outputs.

The source is a Python file whose cells are separated by lines ``# %% [markdown]``
or ``# %%`` (the "percent" format editors understand). Markdown cells have each
line prefixed with ``# ``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat

#: A cell as the build sees it: ("markdown" | "code", source text).
Cell = tuple[str, str]


def parse_cells(text: str) -> list[Cell]:
    """Split percent-format ``text`` into ``(cell_type, source)`` pairs, in order.

    >>> parse_cells("# %% [markdown]\\n# # Title\\n\\n# %%\\nx = 1\\n")
    [('markdown', '# Title'), ('code', 'x = 1')]
    """
    cells: list[Cell] = []
    kind: str | None = None
    lines: list[str] = []

    def flush() -> None:
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(("markdown", body))
        elif kind == "code" and body:
            cells.append(("code", body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(source: Path) -> Any:
    """Parse a percent-format script into a notebook (an ``nbformat.NotebookNode``, outputs empty)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in parse_cells(source.read_text()):
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(text))
    return nb


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def keep_checked_outputs(nb: Any, executed: Any) -> Any:
    """Copy outputs of ``# NBVAL_CHECK_OUTPUT`` cells from ``executed`` into ``nb``."""
    for cell, ran in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK):
            cell.outputs = [o for o in ran.outputs if o.get("output_type") in ("stream", "execute_result")]
            cell.execution_count = ran.execution_count  # nbval ignores outputs of "unrun" cells
    return nb


def execute(nb: Any, cwd: Path) -> Any:
    """Run a copy of ``nb`` with nbclient and return the executed copy."""
    import copy

    from nbclient import NotebookClient

    ran = copy.deepcopy(nb)
    NotebookClient(ran, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return ran


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src, dst = Path(args[0]), Path(args[1])
    notebook = build(src)
    if "--execute" in sys.argv:
        notebook = keep_checked_outputs(notebook, execute(notebook, dst.resolve().parent))
    nbformat.write(notebook, dst)
    print(f"wrote {dst}")

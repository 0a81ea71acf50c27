"""Build a notebook from a compact Python description (used by maintainers, not at run time).

    python tools/nbbuild.py notebooks/_src/00_setup.py notebooks/00_setup.ipynb [--execute]

With ``--execute`` the notebook is run once (services must be reachable) and the
outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` are stored, so nbval has a
reference to compare against; every other cell is saved without outputs. Without it, the
checked outputs already in the committed notebook are kept for cells whose code is unchanged
(and every unchanged cell keeps its id, so a rebuild changes only what changed).

The source is a Python file in jupytext's "percent" format (cells separated by lines
``# %% [markdown]`` or ``# %%``, markdown lines prefixed with ``# ``), read by jupytext
itself; this script adds only what jupytext does not do: the slide metadata, the RISE
settings and the handling of nbval's checked outputs. ``jupytext --to ipynb`` reads the same
sources (without those).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

import jupytext
import nbformat

from perf.export import PLUMBING_TAG, PROSE_TAG


class Cell(NamedTuple):
    """A cell as the build sees it: its kind, source text, and tags from the header line."""

    kind: str  # "markdown" | "code"
    source: str
    tags: tuple[str, ...] = ()


def parse_cells(text: str) -> list[Cell]:
    """Split percent-format ``text`` into :class:`Cell` s, in order, with jupytext (the format's
    own reader: headers with ``tags=[...]``, escaped markdown, blank lines as JupyterLab pairs them).

    >>> parse_cells("# %% [markdown]\\n# # Title\\n\\n# %% tags=[\\"plumbing\\"]\\nx = 1\\n")
    [Cell(kind='markdown', source='# Title', tags=()), Cell(kind='code', source='x = 1', tags=('plumbing',))]
    """
    notebook = jupytext.reads(text, fmt="py:percent")
    return [Cell(cell.cell_type, cell.source, tuple(cell.metadata.get("tags", ()))) for cell in notebook.cells]


def build(source: Path) -> Any:
    """Parse a percent-format script into a notebook (an ``nbformat.NotebookNode``, outputs empty)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["rise"] = dict(RISE_SETTINGS)
    for cell in parse_cells(source.read_text()):
        if cell.kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell.source))
        add_slide_metadata(nb.cells, list(cell.tags))
    return nb


#: RISE's settings for presenting in the lab (``python3 tasks.py lab``, then Alt+R): its default
#: theme ("simple") fetches Google Fonts, which a classroom without network cannot; "white"
#: takes its fonts from the lab. A tall chart or table scrolls instead of being cut off.
RISE_SETTINGS = {"theme": "white", "scroll": True}



def add_slide_metadata(cells: list[Any], tags: list[str]) -> None:
    """Give the last cell its tags and reveal.js slide type (``python3 tasks.py slides``).

    A ``#``/``##`` heading starts a slide, ``###`` a sub-slide, and prose after a code cell a
    sub-slide; other cells continue the current one. A code cell that calls
    ``display(Markdown(`` is tagged ``prose`` (exports show its output only); ``plumbing`` cells are skipped.
    """
    cell, previous = cells[-1], (cells[-2] if len(cells) > 1 else None)
    tags = list(tags)
    if cell.cell_type == "code" and "display(Markdown(" in cell.source and PROSE_TAG not in tags:
        tags.append(PROSE_TAG)
    if tags:
        cell.metadata["tags"] = tags
    if PLUMBING_TAG in tags:
        kind = "skip"
    elif cell.cell_type == "markdown" and cell.source.startswith(("# ", "## ")):
        kind = "slide"
    elif cell.cell_type == "markdown" and (cell.source.startswith("### ")
                                           or (previous is not None and previous.cell_type == "code")):
        kind = "subslide"
    else:
        kind = "-"
    cell.metadata["slideshow"] = {"slide_type": kind}


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def keep_checked_outputs(nb: Any, executed: Any) -> Any:
    """Copy outputs of ``# NBVAL_CHECK_OUTPUT`` cells from ``executed`` into ``nb``."""
    for cell, ran in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK):
            cell.outputs = [o for o in ran.outputs if o.get("output_type") in ("stream", "execute_result")]
            cell.execution_count = ran.execution_count  # nbval ignores outputs of "unrun" cells
    return nb


def keep_previous_outputs(nb: Any, previous: Any) -> Any:
    """Keep what ``previous`` (the committed notebook) has for cells whose text did not change: their
    ids (a rebuild then changes only what changed) and the stored outputs of ``# NBVAL_CHECK_OUTPUT``
    cells (a rebuild without ``--execute`` never drops what nbval compares; a checked cell whose
    code changed has no output until the next ``--execute``)."""
    before = {(cell.cell_type, cell.source): cell for cell in previous.cells}
    for cell in nb.cells:
        old = before.pop((cell.cell_type, cell.source), None)
        if old is None:
            continue
        if "id" in old:
            cell["id"] = old["id"]
        if cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK):
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
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
    if dst.exists():
        notebook = keep_previous_outputs(notebook, nbformat.read(dst, as_version=4))
    if "--execute" in sys.argv:
        notebook = keep_checked_outputs(notebook, execute(notebook, dst.resolve().parent))
    nbformat.write(notebook, dst)
    print(f"wrote {dst}")

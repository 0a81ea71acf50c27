"""Build a notebook from a compact Python description (used by maintainers, not at run time).

    python tools/nbbuild.py notebooks/_src/00_setup.py notebooks/00_setup.ipynb

The source is a Python file whose cells are separated by lines ``# %% [markdown]``
or ``# %%`` (the "percent" format editors understand). Markdown cells have each
line prefixed with ``# ``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(source: Path) -> nbformat.NotebookNode:
    """Parse a percent-format script into a notebook (outputs empty)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    kind, lines = None, []

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text:
            nb.cells.append(nbformat.v4.new_code_cell(text))

    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return nb


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    nbformat.write(build(src), dst)
    print(f"wrote {dst}")

"""The committed notebooks are what their percent-format sources build to (outputs aside).

Rebuild after editing a source: ``python tools/nbbuild.py notebooks/_src/NN_x.py notebooks/NN_x.ipynb``.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "_src").glob("[0-9][0-9]_*.py"))


def _nbbuild() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nbbuild", ROOT / "tools" / "nbbuild.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("nbbuild", module)
    spec.loader.exec_module(module)
    return module


def test_every_source_has_a_notebook_and_back() -> None:
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert SOURCES, "no notebooks/_src/NN_*.py found"
    assert {p.stem for p in SOURCES} == notebooks


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_matches_its_source(source: Path) -> None:
    built = [(c.cell_type, c.source) for c in _nbbuild().build(source).cells]
    committed_nb = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    committed = [(c.cell_type, c.source) for c in committed_nb.cells]
    fix = f"rebuild it: python tools/nbbuild.py notebooks/_src/{source.name} notebooks/{source.stem}.ipynb"
    for i, (want, have) in enumerate(zip(built, committed, strict=False)):
        if have != want:
            diff = "\n".join(difflib.unified_diff(f"{have[0]}\n{have[1]}".splitlines(),
                                                  f"{want[0]}\n{want[1]}".splitlines(),
                                                  "committed", "source", lineterm=""))
            pytest.fail(f"{source.stem}.ipynb cell {i} differs from its source; {fix}\n{diff}")
    assert len(committed) == len(built), f"{source.stem}.ipynb has {len(committed)} cells, source {len(built)}; {fix}"


def test_parse_cells_splits_markdown_and_code() -> None:
    text = '# %% [markdown]\n# # Title\n#\n# prose\n\n# %%\nx = 1\n\n\n# %% tags=["plumbing"]\ny = 2\n'
    cells = [(c.kind, c.source, c.tags) for c in _nbbuild().parse_cells(text)]
    assert cells == [("markdown", "# Title\n\nprose", ()), ("code", "x = 1", ()), ("code", "y = 2", ("plumbing",))]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_sources_round_trip_through_jupytext(source: Path) -> None:
    """The sources are jupytext's percent format exactly: read and written back, nothing changes
    (so `jupytext --sync` and JupyterLab's pairing work on them)."""
    import jupytext

    text = source.read_text()
    assert jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent") == text


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_a_rebuild_without_execute_keeps_ids_and_checked_outputs(source: Path) -> None:
    """Rebuilding an unchanged source over its committed notebook changes nothing: every cell keeps its id
    and every ``# NBVAL_CHECK_OUTPUT`` cell its stored output (a rebuild once dropped them silently)."""
    nbbuild = _nbbuild()
    committed = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    rebuilt = nbbuild.keep_previous_outputs(nbbuild.build(source), committed)
    assert [c.get("id") for c in rebuilt.cells] == [c.get("id") for c in committed.cells]
    checked = [i for i, c in enumerate(committed.cells) if c.cell_type == "code"
               and c.source.lstrip().startswith(nbbuild.CHECK_MARK)]
    assert [rebuilt.cells[i].outputs for i in checked] == [committed.cells[i].outputs for i in checked]
    assert any(committed.cells[i].outputs for i in checked) or not checked

"""Slides and HTML exports: slide metadata from the sources, prose shown once, plumbing left out."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from perf.export import build_slides, export_html, export_slides

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbbuild", ROOT / "tools" / "nbbuild.py")
assert _spec is not None and _spec.loader is not None
nbbuild = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbbuild)

SOURCES = sorted((ROOT / "notebooks" / "_src").glob("0*.py"))


def _executed_prose_notebook(tmp_path: Path) -> nbformat.NotebookNode:
    src = tmp_path / "nb.py"
    src.write_text('# %% [markdown]\n# ## Section one\n# Some words.\n\n'
                   '# %%\nratio = 3.0\ndisplay(Markdown(f"The cache was **{ratio:.1f}x** faster."))\n\n'
                   '# %% tags=["plumbing"]\nimport os  # set-up nobody needs to see\n\n'
                   '# %% [markdown]\n# ### A detail\n# More.\n')
    nb = nbbuild.build(src)
    nb.cells[1].outputs = [nbformat.v4.new_output(
        "display_data", data={"text/markdown": "The cache was **3.0x** faster.", "text/plain": "<Markdown>"})]
    return nb


def test_sources_get_slide_types_and_tags(tmp_path: Path) -> None:
    nb = _executed_prose_notebook(tmp_path)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds == ["slide", "-", "skip", "subslide"]
    assert nb.cells[1].metadata["tags"] == ["prose"] and nb.cells[2].metadata["tags"] == ["plumbing"]


def test_slides_show_prose_once_and_leave_plumbing_out(tmp_path: Path) -> None:
    html = export_slides(_executed_prose_notebook(tmp_path), tmp_path / "nb.slides.html").read_text()
    assert html.count("faster.") == 1  # the output, not the f-string that made it
    assert "display(Markdown" not in html and "set-up nobody needs" not in html
    assert "Section one" in html and "A detail" in html


def test_html_shows_prose_once_but_keeps_plumbing(tmp_path: Path) -> None:
    html = export_html(_executed_prose_notebook(tmp_path), tmp_path / "nb.html").read_text()
    assert html.count("faster.") == 1 and "display(Markdown" not in html
    assert "set-up nobody needs" in html


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_builds_slides(source: Path, tmp_path: Path) -> None:
    nb = nbbuild.build(source)
    path = tmp_path / f"{source.stem}.ipynb"
    nbformat.write(nb, path)
    (slides,) = build_slides([path], out_dir=tmp_path / "out")
    html = slides.read_text()
    starts = sum(c.metadata["slideshow"]["slide_type"] in ("slide", "subslide") for c in nb.cells)
    assert starts >= 3, "a notebook deserves at least a title and two sections"
    assert html.count("<section") >= starts
    assert "display(Markdown" not in html


def test_slides_load_reveal_from_beside_the_deck_not_a_cdn(tmp_path: Path) -> None:
    html = export_slides(_executed_prose_notebook(tmp_path), tmp_path / "deck" / "nb.slides.html").read_text()
    loads = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert "reveal.js/dist/reveal.js" in loads and "reveal.js/dist/reveal.css" in loads
    assert [url for url in loads if "//" in url] == [], "a deck must not load from the network"
    assert "import mermaid" not in html and "require(" not in html
    assert (tmp_path / "deck" / "reveal.js" / "dist" / "theme" / "white.css").exists()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_carry_the_rise_settings(source: Path) -> None:
    nb = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    assert nb.metadata.get("rise") == nbbuild.RISE_SETTINGS, (
        f"rebuild it: python tools/nbbuild.py notebooks/_src/{source.name} notebooks/{source.stem}.ipynb")

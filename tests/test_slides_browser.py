"""The slides, seen in a real browser: headless Chromium opens decks from files, with no network.

A small notebook is executed (a chart, computed prose, a plumbing cell), exported with
``build_slides``, and its folder copied elsewhere before Chromium opens it: reveal.js must
initialise from the copy beside the deck, show as many slides as the notebook's slide
metadata asks for, load the chart, and ask nothing of the network. Screenshots of the title
and the chart slide land in the test's folder (``--basetemp`` keeps them).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from perf.export import build_slides
from perf.reveal_assets import ASSET_DIR
from perf.workbook import list_notebooks
from tests._browser import Page, find_chromium, open_browser

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbbuild", ROOT / "tools" / "nbbuild.py")
assert _spec is not None and _spec.loader is not None
nbbuild = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbbuild)

SMALL_DECK = '''# %% [markdown]
# # A small deck
# Opened from a file, with no network.

# %% tags=["plumbing"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

# %% [markdown]
# ## A chart
# Two bars drawn by matplotlib in the kernel.

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(["before", "after"], [1.0, 3.0], color=["#888", "#2a7"])
ax.set_ylabel("requests / s")
plt.show()

# %%
display(Markdown(f"After is **{3.0 / 1.0:.0f}x** before."))

# %% [markdown]
# ### A detail
# A sub-slide: press the down arrow.

# %% [markdown]
# ## The end
'''


def slide_count(nb: nbformat.NotebookNode) -> int:
    """Slides reveal.js should count: one per cell that starts a slide or a sub-slide."""
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in nb.cells)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    chromium, why_not = find_chromium()
    if chromium is None:
        pytest.skip(f"headless Chromium is needed to see the slides: {why_not}")
    with open_browser(chromium) as tab:
        yield tab


def open_deck(page: Page, deck: Path) -> None:
    """Open ``deck`` and wait until reveal.js says it is ready."""
    page.goto(deck.as_uri())
    page.wait_for("typeof Reveal !== 'undefined' && Reveal.isReady()", timeout=30)


def go_to_slide(page: Page, h: int) -> None:
    """Show horizontal slide ``h`` and wait for its transition to end (a screenshot mid-way shows two slides)."""
    page.evaluate(f"""new Promise(done => {{
        Reveal.on('slidetransitionend', () => done(true));
        setTimeout(() => done(false), 5000);
        Reveal.slide({h}, 0);
    }})""")
    assert page.evaluate("Reveal.getIndices().h") == h


def assert_offline(page: Page) -> None:
    requests = page.requests()
    assert requests, "the browser reported no request at all: network events are not being recorded"
    assert page.failed_requests() == []
    remote = [url for url in requests if not url.startswith(("file:", "data:"))]
    assert remote == [], "a deck must load nothing from the network"


def test_small_deck_renders_offline_with_its_chart(page: Page, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    source = tmp_path / "small_deck.py"
    source.write_text(SMALL_DECK)
    nb = nbbuild.build(source)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nbformat.write(nb, tmp_path / "small_deck.ipynb")
    (deck,) = build_slides([tmp_path / "small_deck.ipynb"], out_dir=tmp_path / "built")
    copied = tmp_path / "copied"  # where an instructor carried the folder: nothing may point back
    shutil.copytree(deck.parent, copied)
    shutil.rmtree(deck.parent)

    open_deck(page, copied / deck.name)
    assert page.evaluate("Reveal.getTotalSlides()") == slide_count(nb) == 4
    page.screenshot(tmp_path / "slide-title.png")
    go_to_slide(page, 1)
    assert page.evaluate("document.querySelector('section.present img') !== null"), "the chart is not on slide 2"
    images = page.evaluate("Array.from(document.querySelectorAll('.slides img'))"
                           ".map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert images and all(done and width > 100 and height > 100 for done, width, height in images), images
    text = page.evaluate("document.querySelector('.slides').innerText")
    assert "After is 3x before." in text and "display(Markdown" not in text and "import matplotlib" not in text
    assert page.evaluate("getComputedStyle(document.querySelector('.reveal')).position") != "static", \
        "reveal.css did not apply"
    page.screenshot(tmp_path / "slide-chart.png")
    assert (tmp_path / "slide-chart.png").stat().st_size > (tmp_path / "slide-title.png").stat().st_size / 2
    assert_offline(page)
    assert (copied / ASSET_DIR / "dist" / "reveal.js").exists()


def test_every_workbook_deck_initialises_offline(page: Page, tmp_path: Path) -> None:
    notebooks = list_notebooks()
    assert notebooks
    for deck, notebook in zip(build_slides(notebooks, out_dir=tmp_path), notebooks, strict=True):
        open_deck(page, deck)
        expected = slide_count(nbformat.read(notebook, as_version=4))
        assert page.evaluate("Reveal.getTotalSlides()") == expected, deck.name
        assert_offline(page)
    page.screenshot(tmp_path / f"{notebooks[-1].stem}-title.png")

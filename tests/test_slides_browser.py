"""The slides, seen in a real browser: headless Chromium opens the decks and the lab's RISE view.

A small notebook is executed (a chart, computed prose, a plumbing cell), exported with
``build_slides``, and its folder copied elsewhere before Chromium opens it: reveal.js must
initialise from the copy beside the deck, show as many slides as the notebook's slide
metadata asks for, load the chart, and ask nothing of the network. The same notebook is then
presented by RISE in ``python -m perf lab`` (what ``tasks.py lab`` runs). Screenshots land in
the tests' folders (``--basetemp`` keeps them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from perf.export import build_slides
from perf.reveal_assets import ASSET_DIR
from perf.services.process import stop_processes
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


@pytest.fixture(scope="module")
def small_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`SMALL_DECK` built and executed (its chart and prose stored as outputs), alone in a folder."""
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("small")
    source = folder / "small_deck.py"
    source.write_text(SMALL_DECK)
    nb = nbbuild.build(source)
    source.unlink()
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nbformat.write(nb, folder / "small_deck.ipynb")
    return folder / "small_deck.ipynb"


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


def test_small_deck_renders_offline_with_its_chart(page: Page, small_notebook: Path, tmp_path: Path) -> None:
    nb = nbformat.read(small_notebook, as_version=4)
    (deck,) = build_slides([small_notebook], out_dir=tmp_path / "built")
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def lab(small_notebook: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m perf lab`` on the small notebook's folder; yields its URL with the token."""
    port, token = _free_port(), "perf-browser-test"
    home = tmp_path_factory.mktemp("lab-home")
    # Settings and workspaces in a throwaway folder: the user's own must neither leak in nor change.
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    log = (home / "lab.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "perf", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}",
                             f"--notebook-dir={small_notebook.parent}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 120 s (exit {proc.poll()}): "
                                f"{(home / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"{url}/{{}}?token={token}"
    finally:
        stop_processes(proc, timeout=30)
        log.close()


@pytest.mark.timeout(300)  # a JupyterLab start, then the lab and RISE pages (about 1.5 min on a busy 2-core machine)
def test_the_lab_offers_rise_and_presents_the_notebook_offline(page: Page, lab: str, small_notebook: Path,
                                                               tmp_path: Path) -> None:
    page.goto(lab.format(f"lab/tree/{small_notebook.name}"), timeout=120)
    page.wait_for("document.querySelector('.jp-NotebookPanel-toolbar [data-command=\"RISE:preview\"]') !== null"
                  " && document.querySelector('.jp-NotebookPanel .jp-OutputArea img') !== null", timeout=90)
    page.screenshot(tmp_path / "lab-notebook.png")

    page.goto(lab.format(f"rise/{small_notebook.name}"), timeout=120)
    page.wait_for("document.querySelector('.reveal.ready') !== null", timeout=90)
    nb = nbformat.read(small_notebook, as_version=4)
    shown = page.evaluate("document.querySelectorAll('.reveal .slides section:not(.stack)').length")
    assert shown == slide_count(nb), "RISE did not build its slides from the notebook's slide metadata"
    page.screenshot(tmp_path / "rise-title.png")
    page.evaluate("document.querySelector('.reveal .controls .navigate-right').click()")
    page.wait_for("document.querySelector('.reveal section.present img') !== null", timeout=30)
    time.sleep(1.0)  # the slide transition: a screenshot mid-way shows two slides
    page.screenshot(tmp_path / "rise-chart.png")
    images = page.evaluate("Array.from(document.querySelectorAll('.reveal section.present img'))"
                           ".map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width > 100 for done, width in images), images
    left = [url for url in page.requests() if not url.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert left == [], "RISE in the lab must load nothing from beyond this machine (its theme's fonts included)"
    # RISE asks for an optional stylesheet per notebook (rise.css, <name>.css); a 404 is how it learns there is none.
    optional = ("/files/rise.css", f"/files/{small_notebook.stem}.css")
    assert [f for f in page.failed_requests() if not any(o in f for o in optional)] == []

"""Export notebooks for readers: HTML (every cell) and reveal.js slides (for presenting).

Prose that a notebook computes from its run lives in code cells tagged ``prose``
(``display(Markdown(f"..."))``): both exports show such a cell's output and hide its
source, so each sentence appears once. Slides also leave out cells tagged ``plumbing``
(set-up and clean-up). Tags and slide types are written by ``tools/nbbuild.py``.

Slides load nothing from the network: reveal.js comes from a folder beside the deck
(:mod:`perf.reveal_assets`, taken from the installed jupyterlab-rise), and nbconvert's
template is narrowed to drop what it would fetch from CDNs (jQuery, require.js, mermaid,
MathJax; the notebooks use none of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from perf.reveal_assets import ASSET_DIR, THEME, write_reveal

#: A code cell that only displays computed prose: exports show its output, not its code.
PROSE_TAG = "prose"
#: Set-up and clean-up cells: left out of slides.
PLUMBING_TAG = "plumbing"

#: nbconvert's reveal template with every CDN load replaced by the local reveal.js (``ASSET_DIR``).
_OFFLINE_SLIDES = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
    controls: true,
    progress: true,
    history: true,
    transition: "{{ resources.reveal.transition | default('slide', true) }}",
    slideNumber: "{{ resources.reveal.number }}",
    plugins: [RevealNotes],
    width: {{ resources.reveal.width | default('960', true) }},
    height: {{ resources.reveal.height | default('700', true) }},
});
// A slide taller than the screen scrolls instead of being cut off (nbconvert's version needs jQuery).
function setScrollingSlide() {
    if ({{ resources.reveal.scroll | json_dumps }} !== true) return;
    var limit = document.querySelector(".reveal").offsetHeight * 0.95;
    document.querySelectorAll("section.present, section.present section").forEach(function (section) {
        if (section.scrollHeight > limit) {
            section.style.height = "calc(95vh)";
            section.style.overflowY = "scroll";
            section.style.marginTop = "20px";
        }
    });
}
Reveal.on("ready", setScrollingSlide);
Reveal.on("slidechanged", setScrollingSlide);
</script>
{% endblock footer_js %}
"""


def _exporter(kind: str) -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter, SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_input_tags = {PROSE_TAG}
    config.TagRemovePreprocessor.remove_cell_tags = {PLUMBING_TAG} if kind == "slides" else set()
    config.TagRemovePreprocessor.enabled = True
    # nbconvert is untyped: Any keeps mypy's strict mode honest about that
    exporter: Any = (SlidesExporter if kind == "slides" else HTMLExporter)(config=config)  # type: ignore[no-untyped-call]
    remove: Any = TagRemovePreprocessor(config=config)
    exporter.register_preprocessor(remove, enabled=True)
    if kind == "slides":
        exporter.reveal_scroll = True  # a tall chart or table scrolls instead of being cut off
        exporter.reveal_url_prefix = ASSET_DIR  # relative: a deck folder copied elsewhere still works
        exporter.reveal_theme = THEME
        exporter.extra_loaders = [DictLoader({"perf_offline_slides.html.j2": _OFFLINE_SLIDES})]
        exporter.template_file = "perf_offline_slides.html.j2"
    return exporter


def export_html(nb: nbformat.NotebookNode, path: Path) -> Path:
    """Write ``nb`` as a standalone HTML page at ``path`` (prose cells once, as text)."""
    body, _ = _exporter("html").from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
    return path


def export_slides(nb: nbformat.NotebookNode, path: Path) -> Path:
    """Write ``nb`` as reveal.js slides at ``path`` (``*.slides.html``; open it in a browser).

    ``##`` headings start slides, ``###`` sub-slides (press the down arrow); prose cells show
    their text once; ``plumbing`` cells are left out. reveal.js is written beside it
    (``reveal.js/``), so the deck and that folder work with no network.
    """
    write_reveal(path.parent)
    body, _ = _exporter("slides").from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
    return path


def build_slides(notebooks: list[Path], *, out_dir: Path, executed_dir: Path | None = None) -> list[Path]:
    """Slides for each notebook, from its executed copy in ``executed_dir`` when there is one
    (charts and numbers of the last workbook run), else from the notebook as committed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        executed = executed_dir / path.name if executed_dir is not None else None
        source = executed if executed is not None and executed.exists() else path
        nb = nbformat.read(source, as_version=4)
        written.append(export_slides(nb, out_dir / f"{path.stem}.slides.html"))
    return written

"""reveal.js for slides that work offline, taken from the installed ``jupyterlab-rise``.

RISE for JupyterLab (``jupyterlab-rise``, installed for ``python3 tasks.py lab``) bundles
reveal.js into its webpack chunks, and the source maps beside them carry each original
reveal.js file verbatim (``sourcesContent``). This module is the one place that knows that
layout: it takes from the maps the few files a deck needs and writes them into a folder
``reveal.js/`` beside the decks, so a deck loads nothing from the network and a copied
deck folder still works. Checked on jupyterlab-rise 0.43.1, which ships reveal.js 4.4.0;
``tests/test_reveal_assets.py`` fails loudly when a release moves them.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path

#: The folder, beside the decks, that holds reveal.js; decks refer to it relatively.
ASSET_DIR = "reveal.js"
#: The reveal.js theme the decks use: its fonts are the system's (see ``_drop_font_imports``).
THEME = "white"
#: Files a deck loads, by their path inside the reveal.js package.
WANTED = ("dist/reveal.css", f"dist/theme/{THEME}.css", "dist/reveal.esm.js", "plugin/notes/notes.esm.js")
#: The global each ES module becomes in a classic script (``window.Reveal``, ``window.RevealNotes``).
GLOBALS = {"dist/reveal.esm.js": "Reveal", "plugin/notes/notes.esm.js": "RevealNotes"}
_MARK = "node_modules/reveal.js/"


class RevealAssetsMissing(RuntimeError):
    """The installed jupyterlab-rise does not carry the reveal.js files a deck needs."""


def rise_static_dir() -> Path:
    """The folder of ``jupyterlab_rise``'s bundles and their source maps."""
    # find_spec, not import: importing the package loads a Jupyter server extension for nothing
    spec = importlib.util.find_spec("jupyterlab_rise")
    if spec is None or spec.origin is None:
        raise RevealAssetsMissing("jupyterlab-rise is not installed: offline slides take reveal.js from it; "
                                  "run `python3 tasks.py setup` (requirements.txt pins it)")
    return Path(spec.origin).parent / "static"


@cache
def read_reveal_sources(static_dir: Path) -> dict[str, str]:
    """The reveal.js files in ``static_dir``'s source maps, by path inside reveal.js (``dist/reveal.css``).

    Only the :data:`WANTED` files are returned; every one must be there.
    """
    found: dict[str, str] = {}
    for map_path in sorted(static_dir.glob("*.js.map")):
        raw = map_path.read_text(encoding="utf-8")
        if _MARK not in raw:  # most maps are JupyterLab's own: skip parsing them
            continue
        data = json.loads(raw)
        for source, content in zip(data.get("sources", []), data.get("sourcesContent") or [], strict=False):
            path = source.partition(_MARK)[2]
            if path in WANTED and content and path not in found:
                found[path] = content
    missing = sorted(set(WANTED) - set(found))
    if missing:
        raise RevealAssetsMissing(f"{static_dir} has no source map carrying reveal.js's {', '.join(missing)}: "
                                  "jupyterlab-rise changed its layout; pin the version requirements.txt names "
                                  "or update perf/reveal_assets.py")
    return found


def classic_script(module: str, global_name: str) -> str:
    """An ES module with one ``export default`` and no imports as a classic script setting ``window.<global_name>``.

    A page opened from a file (``file://``) may not load module scripts (Chromium refuses them
    as cross-origin), so decks load classic scripts; the function wrapper keeps the module's
    top-level names out of the page's scope, where two such scripts would collide.

    >>> classic_script("const a=1;export default a;\\n//# sourceMappingURL=x.map", "A")
    '(function(){const a=1;window.A= a;})();\\n'
    """
    body = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "", module)
    exports = len(re.findall(r"\bexport\s*default\b", body))
    if exports != 1 or re.search(r"(^|[;}])\s*import[\s{*]", body):
        raise RevealAssetsMissing(f"the module for {global_name} has {exports} `export default` (one expected) "
                                  "or imports: update perf/reveal_assets.py for this reveal.js")
    body = re.sub(r"\bexport\s*default\b", f"window.{global_name}=", body)
    return f"(function(){{{body}}})();\n"


def original_css(loader_module: str) -> str:
    """The stylesheet a webpack css-loader module was made from (its inline source map keeps it verbatim).

    >>> original_css('x.push([module.id, "a{}", "", {"version":3,"sourcesContent":["a {}"],"sourceRoot":""}]);')
    'a {}'
    """
    found = re.search(r'\{"version":3,.*?"sourceRoot":""\}', loader_module)
    if found is None:
        raise RevealAssetsMissing("a reveal.js stylesheet module carries no inline source map: "
                                  "update perf/reveal_assets.py for this jupyterlab-rise")
    contents: list[str] = json.loads(found.group(0)).get("sourcesContent") or []
    if len(contents) != 1:
        raise RevealAssetsMissing(f"a reveal.js stylesheet module maps {len(contents)} sources, one expected: "
                                  "update perf/reveal_assets.py for this jupyterlab-rise")
    return contents[0]


def _drop_font_imports(css: str) -> str:
    # The theme's webfonts are bundled under hashed names that no map records: the theme's
    # font stack falls back to Helvetica / sans-serif rather than fail a request per font.
    return re.sub(r"@import url\(\.?/?fonts/[^)]*\);\s*", "", css)


def write_reveal(out_dir: Path, *, static_dir: Path | None = None) -> Path:
    """Write reveal.js (styles, theme, script, speaker notes) into ``out_dir/reveal.js``; return that folder.

    Decks in ``out_dir`` load ``reveal.js/dist/reveal.js`` and friends from there.

    >>> folder = write_reveal(Path(__import__("tempfile").mkdtemp()))
    >>> sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.*"))
    ['dist/reveal.css', 'dist/reveal.js', 'dist/theme/white.css', 'plugin/notes/notes.js']
    """
    sources = read_reveal_sources(static_dir or rise_static_dir())
    root = out_dir / ASSET_DIR
    for path, content in sources.items():
        if path in GLOBALS:
            content, path = classic_script(content, GLOBALS[path]), path.replace(".esm.js", ".js")
        else:
            content = _drop_font_imports(original_css(content))
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
    return root

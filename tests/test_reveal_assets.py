"""reveal.js taken from jupyterlab-rise: the seam fails loudly when a release moves the files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from perf.reveal_assets import (
    RevealAssetsMissing,
    classic_script,
    read_reveal_sources,
    rise_static_dir,
    write_reveal,
)


def test_installed_rise_carries_reveal_4_4() -> None:
    sources = read_reveal_sources(rise_static_dir())
    assert 'VERSION="4.4.0"' in sources["dist/reveal.esm.js"], "jupyterlab-rise moved to another reveal.js"
    assert "export default" in sources["plugin/notes/notes.esm.js"]


def test_written_reveal_is_classic_scripts_and_plain_css(tmp_path: Path) -> None:
    root = write_reveal(tmp_path)
    script = (root / "dist" / "reveal.js").read_text()
    assert script.startswith("(function(){") and "window.Reveal=" in script
    assert not re.search(r"\bexport\s*default\b", script)
    assert "window.RevealNotes=" in (root / "plugin" / "notes" / "notes.js").read_text()
    for css in (root / "dist" / "reveal.css", root / "dist" / "theme" / "white.css"):
        text = css.read_text()
        assert ".reveal" in text and "CSS_LOADER" not in text, f"{css.name} is not the original stylesheet"
        assert "@import" not in text, f"{css.name} would fetch what is not beside it"
        assert not re.search(r"url\((?!data:)", text), f"{css.name} refers to a file that is not written"


def test_a_second_write_leaves_files_untouched(tmp_path: Path) -> None:
    root = write_reveal(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.*")}
    write_reveal(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.*")} == before


def test_a_static_dir_without_reveal_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "1.js.map").write_text(json.dumps({"sources": ["node_modules/reveal.js/dist/reveal.css"],
                                                   "sourcesContent": ["x"]}))
    with pytest.raises(RevealAssetsMissing, match=r"dist/reveal.esm.js.*pin the version"):
        read_reveal_sources(tmp_path)


def test_a_module_with_imports_is_refused() -> None:
    with pytest.raises(RevealAssetsMissing, match="Reveal"):
        classic_script('import x from "y";export default x;', "Reveal")
    with pytest.raises(RevealAssetsMissing, match="0 `export default`"):
        classic_script("const a = 1;", "Reveal")

"""``python -m perf workbook 05 06`` and ``slides 05`` pick notebooks by number or path, and name a miss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from perf.__main__ import _pick_notebooks
from perf.workbook import list_notebooks


def test_numbers_and_paths_pick_those_notebooks_in_the_order_given() -> None:
    known = {nb.name[:2]: nb for nb in list_notebooks()}
    assert _pick_notebooks(["05", "01"]) == [known["05"], known["01"]]
    assert _pick_notebooks([str(known["03"])]) == [known["03"].resolve()]
    assert _pick_notebooks([]) == list_notebooks()


def test_a_name_that_matches_nothing_is_refused_with_the_numbers_there_are(tmp_path: Path) -> None:
    message = _pick_notebooks(["05", "99"])
    assert isinstance(message, str) and "'99'" in message and "05" in message
    done = subprocess.run([sys.executable, "-m", "perf", "workbook", str(tmp_path / "nope.ipynb")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "nope.ipynb" in done.stderr and done.stdout == ""

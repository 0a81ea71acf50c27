"""Floors only run down: compat -> services -> measure -> runs -> charts -> techniques -> api/load
-> lab/bench/exercises -> export -> workbook -> the CLI.

Read from the imports of every module under ``perf/``: a module may import its own package, anything
on a lower floor, and nothing on its own floor or above (a peer import is a crossed wire: apparatus
that spans two packages belongs one floor up, in ``perf.lab``), except the pairs named below.
``perf.compat`` (dependencies' private names, quarantined) is on the ground floor: it imports no ``perf`` module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PERF = Path(__file__).resolve().parents[1] / "perf"

FLOORS: dict[str, int] = {
    "config": 0, "asgi": 0, "aio": 0, "lazy": 0, "logs": 0, "compat": 0,
    "services": 1,
    "measure": 2, "runs": 3, "charts": 4,
    "cache": 5, "db": 5, "pool": 5, "compression": 5, "queue": 5,
    "api": 6, "load": 6,
    "lab": 7, "bench": 7, "exercises": 7, "reset": 7, "reveal_assets": 7,
    "export": 8, "workbook": 9, "__main__": 10, "__init__": 10,
}
# Peer imports kept on purpose, each with its reason.
ALLOWED = {
    ("queue", "pool"): "the durable queue classifies 'PostgreSQL unavailable' as the pool does (one list)",
}


def imports(root: Path = PERF) -> list[tuple[Path, str, str, str]]:
    """``(file, its package, imported module, that module's package)`` for every ``perf.*`` import."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = path.relative_to(root).with_suffix("").parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            found += [(path, here, name, name.split(".")[1]) for name in names if name.startswith("perf.")]
    return found


def upward_imports(root: Path = PERF) -> list[str]:
    """``"perf/x/y.py -> perf.z.w"`` for every import that runs up or across a floor."""
    found = []
    for path, here, name, there in imports(root):
        if there == here:
            continue
        if here not in FLOORS or there not in FLOORS:
            found.append(f"{path.relative_to(root.parent)} -> {name} (a package with no floor: add it)")
        elif FLOORS[there] >= FLOORS[here] and (here, there) not in ALLOWED:
            found.append(f"{path.relative_to(root.parent)} -> {name}")
    return found


def test_every_import_runs_down_a_floor() -> None:
    assert upward_imports() == []


def test_a_planted_upward_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "perf"
    (package / "cache").mkdir(parents=True)
    (package / "bench").mkdir()
    (package / "cache" / "x.py").write_text("from perf.bench.cache import run\nfrom perf.measure import time_async\n")
    (package / "bench" / "y.py").write_text("from perf.cache.x import run\n")
    assert upward_imports(package) == ["perf/cache/x.py -> perf.bench.cache"]


def test_each_allowed_peer_import_is_still_needed() -> None:
    pairs = {(here, there) for _, here, _, there in imports()}
    assert not [pair for pair in ALLOWED if pair not in pairs], "drop these from ALLOWED: no module imports them"

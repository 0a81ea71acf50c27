"""Each package's front door offers the names a notebook needs, and no submodule shadows them."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

PACKAGES = ["perf.load", "perf.lab", "perf.cache", "perf.pool", "perf.measure", "perf.queue", "perf.exercises",
            "perf.compression", "perf.bench",
            "perf.services", "perf.db", "perf.api"]


@pytest.mark.parametrize("package", PACKAGES)
def test_front_door_names_are_what_they_say_after_every_submodule_is_imported(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        # the Locust recorder runs only inside Locust's processes: importing it patches with gevent
        if not info.name.endswith(("__main__", ".locust.recorder")):
            importlib.import_module(info.name)  # importing a submodule sets it on its package
    exercise_modules = {"api", "background", "caching", "compression", "db", "load", "pool"}
    # the syllabus' code, bugs kept, is offered as the module it is (`naive.CacheManager`)
    modules_by_design = exercise_modules if package == "perf.exercises" else {"naive"}
    for name in module.__all__:
        value = getattr(module, name)
        assert name in modules_by_design or not isinstance(value, types.ModuleType), \
            f"{package}.{name} is a module, not the exported object: a submodule has the same name"


@pytest.mark.parametrize("package", ["perf.load", "perf.lab", "perf.db", "perf.api", "perf.bench"])
def test_a_lazy_front_door_imports_nothing_until_a_name_is_asked_for(package: str) -> None:
    """A process that imports one module of the package (a server, a generator child) pays for no apparatus."""
    import subprocess
    import sys

    script = (f"import sys, {package} as door\n"
              "loaded = sorted(m for m in sys.modules if m.startswith(door.__name__ + '.'))\n"
              "offered = sorted(door.__all__) == sorted(set(dir(door)) & set(door.__all__))\n"
              "print(loaded, offered, 'pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["[]", "True", "False"], out.stdout + out.stderr


def test_notebooks_import_only_from_front_doors() -> None:
    """A notebook names ``perf``, a top-level module (``perf.charts``) or a package's front door, and only
    names that door offers in ``__all__``: what a learner imports is what the package promises to keep."""
    import ast
    import importlib.util
    from pathlib import Path

    sources = sorted((Path(__file__).parents[1] / "notebooks" / "_src").glob("*.py"))
    assert sources
    deep: list[str] = []
    for source in sources:
        tree = compile(source.read_text(), str(source), "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deep += [f"{source.name}: import {a.name}" for a in node.names
                         if a.name.startswith("perf.") and a.name.count(".") > 1]
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").split(".")[0] == "perf":
                continue
            module = str(node.module)
            spec = importlib.util.find_spec(module)
            assert spec is not None, f"{source.name} imports {module}, which does not exist"
            if spec.submodule_search_locations is None:  # a module: only perf's own top-level ones are doors
                if module.count(".") > 1:
                    deep.append(f"{source.name}: from {module} import ...")
                continue
            if module == "perf":  # the top door offers its packages and top-level modules
                deep += [f"{source.name}: from perf import {a.name} (no such module)" for a in node.names
                         if importlib.util.find_spec(f"perf.{a.name}") is None]
                continue
            offered = set(importlib.import_module(module).__all__)
            deep += [f"{source.name}: from {module} import {a.name} (not in its __all__)"
                     for a in node.names if a.name not in offered]
    assert not deep, "notebooks import past the front doors:\n" + "\n".join(deep)

"""Each package's front door offers the names a notebook needs, and no submodule shadows them."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

PACKAGES = ["perf.load", "perf.lab", "perf.cache", "perf.pool", "perf.measure", "perf.queue", "perf.exercises",
            "perf.services", "perf.db", "perf.api"]


@pytest.mark.parametrize("package", PACKAGES)
def test_front_door_names_are_what_they_say_after_every_submodule_is_imported(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        # the Locust recorder runs only inside Locust's processes: importing it patches with gevent
        if not info.name.endswith(("__main__", ".locust.recorder")):
            importlib.import_module(info.name)  # importing a submodule sets it on its package
    exercise_modules = {"api", "background", "caching", "compression", "db", "load", "pool"}
    modules_by_design = exercise_modules if package == "perf.exercises" else set()
    for name in module.__all__:
        value = getattr(module, name)
        assert name in modules_by_design or not isinstance(value, types.ModuleType), \
            f"{package}.{name} is a module, not the exported object: a submodule has the same name"


@pytest.mark.parametrize("package", ["perf.load", "perf.lab", "perf.db", "perf.api"])
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

"""Each package's front door offers the names a notebook needs, and no submodule shadows them."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

PACKAGES = ["perf.load", "perf.cache", "perf.pool", "perf.measure", "perf.queue", "perf.exercises"]


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

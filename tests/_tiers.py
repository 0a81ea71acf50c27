"""Which tier a test belongs to: ``slow`` when it starts a process, found from its code.

The fast tier (``python3 tasks.py test --fast``, i.e. ``-m "not slow"``) is every test that
needs no notebook execution and starts no process: no API server, no load generator, no
Locust, no schemathesis, no private PostgreSQL or Redis, no ``subprocess``. Nobody marks a
test by hand: :func:`starts_a_process` reads the names a test's code uses, the code of the
fixtures its module defines, and of the module's helpers they call (transitively), and
looks for one of :data:`PROCESS_STARTERS`. A test that escapes the net but runs over
:data:`SLOW_SECONDS` is reported at the end of the run, so the list stays honest.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SLOW_SECONDS = 5.0

# A test whose code reaches one of these names starts a process: a server, a worker, a load
# generator, a private PostgreSQL/Redis pair, a fuzzer, a CLI. (Notebook cells are slow too.)
PROCESS_STARTERS = frozenset({
    "subprocess", "Popen", "create_subprocess_exec", "create_subprocess_shell", "multiprocessing",
    "ProcessPoolExecutor", "fork", "schemathesis", "locust",
    "NotebookClient",  # a Jupyter kernel: a process of its own
})
# Followed into: the project's own code (perf/ and tests/), where the process is usually started.
_ROOT = Path(__file__).resolve().parents[1]
_FOLLOWED = (_ROOT / "perf", _ROOT / "tests")


def _code_names(code: types.CodeType) -> set[str]:
    """Global and attribute names used by ``code`` and every function nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _ours(obj: Any) -> bool:
    """True for a function or class defined in perf/ or tests/ (pytest imports test modules by bare name)."""
    return _module_is_ours(str(getattr(obj, "__module__", "") or ""))


@functools.cache
def _module_is_ours(name: str) -> bool:
    path = getattr(sys.modules.get(name), "__file__", None)
    return path is not None and any(Path(path).resolve().is_relative_to(root) for root in _FOLLOWED)


def _functions_of(obj: Any) -> list[types.FunctionType]:
    """The plain functions behind ``obj``: itself, the function a pytest fixture wraps, a class's methods."""
    if isinstance(obj, type):
        found: list[types.FunctionType] = []
        for klass in obj.__mro__:
            if _ours(klass):
                for member in vars(klass).values():
                    found += _functions_of(getattr(member, "__func__", member))
        return found
    for candidate in (obj, getattr(obj, "__wrapped__", None)):
        if isinstance(candidate, types.FunctionType):
            return [candidate]
    return []


def reaches_a_process_starter(start: Iterable[Any], cache: dict[int, bool] | None = None) -> bool:
    """True when the code of ``start`` (functions, fixtures, classes), or of the project's own functions
    and classes it names (followed through each function's module globals), uses a :data:`PROCESS_STARTERS`
    name."""
    seen: set[int] = set()
    todo = [f for s in start for f in _functions_of(s)]
    while todo:
        func = todo.pop()
        if id(func) in seen:
            continue
        seen.add(id(func))
        names = _code_names(func.__code__)
        if names & PROCESS_STARTERS:
            return True
        for name in names:
            target = func.__globals__.get(name)
            if target is not None and _ours(target):
                todo += _functions_of(target)
    return False


def starts_a_process(item: pytest.Item) -> bool:
    """True when ``item`` is a notebook cell (nbval), or its code, its module's fixtures, or the project
    code they call reach a :data:`PROCESS_STARTERS` name."""
    if item.nodeid.split("::", 1)[0].endswith(".ipynb"):
        return True
    function = getattr(item, "function", None)
    module = getattr(item, "module", None)
    if function is None or module is None:
        return False
    # Fixtures defined in the test module; conftest's (the shared pair) are every test's, not counted.
    fixtures = [getattr(module, name, None) for name in getattr(item, "fixturenames", ())]
    return reaches_a_process_starter([function, *[f for f in fixtures if f is not None]])

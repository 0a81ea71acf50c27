"""Front doors that import on first use: ``from perf.lab import compare_modes`` loads only what it names.

A package's ``__init__`` lists where each of its names lives; the name is imported the first
time it is asked for, then kept. A server process that imports one module of the package
(the API's, a load generator child) does not pay for the notebook apparatus beside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(package: str, namespace: MutableMapping[str, Any], homes: Mapping[str, str],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``homes`` maps each exported name to its module.

    >>> __getattr__, __dir__ = lazy_exports(__name__, globals(), {"sweep": "perf.load.concurrency"})
    """
    offered = sorted(homes)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook (PEP 562)
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}; the front door offers {offered}")
        module = importlib.import_module(home)
        # a home named after the export is a module offered whole (``from perf.cache import naive``)
        value = module if home == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook (PEP 562)
        return sorted({*namespace, *offered})

    return __getattr__, __dir__

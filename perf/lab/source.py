"""Showing learners the code a notebook measures: the functions themselves, read from ``perf``."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from IPython.display import Markdown


def show_source(*objects: Any) -> Markdown:
    """The source of ``objects`` (functions, methods, classes) as one Markdown block, each headed
    by its module and line, so a notebook shows the code it measures, never a copy of it."""
    if not objects:
        raise ValueError("show_source() needs at least one function, method or class")
    parts = []
    for obj in objects:
        target = inspect.unwrap(obj)
        try:
            lines, first = inspect.getsourcelines(target)
        except (OSError, TypeError) as exc:
            raise TypeError(f"show_source() cannot read the source of {obj!r}: {exc}") from exc
        where = f"{target.__module__}.{target.__qualname__}"
        parts.append(f"`{where}` (line {first})\n\n```python\n{textwrap.dedent(''.join(lines)).rstrip()}\n```")
    return Markdown("\n\n".join(parts))  # type: ignore[no-untyped-call]

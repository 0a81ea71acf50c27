"""A flame graph of a pyinstrument profile, as SVG, and its widest frames named.

Each box is a function in a call stack: its width is the share of sampled time spent in it
*and everything it called*, the boxes above it are what it called. The bottom rows of a
server's graph are its trunk (the event loop, uvicorn's protocol), as wide as the whole run;
what the server did is in the boxes that branch off the trunk, and :func:`widest_frames`
names the widest of those.

>>> svg = flame_svg(profile, title="GET /products under load")   # IPython.display.SVG(svg)
>>> widest_frames(profile, n=3)                                   # function, file, package, share
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pandas as pd

#: What a package's frames are, for prose ("uvicorn: HTTP parsing and the socket").
PACKAGES = {
    "perf": "this workbook's code (the API's handlers, service, cache and layers)",
    "nexios": "the web framework (router, Request and Response)",
    "uvicorn": "the ASGI server (HTTP parsing, the socket)",
    "httptools": "the HTTP parser",
    "asyncpg": "the PostgreSQL driver",
    "redis": "the Redis client",
    "orjson": "JSON encoding",
    "asyncio": "the event loop's own machinery",
    "uvloop": "the event loop's own machinery",
    "prometheus_client": "the metrics library",
    "builtins": "built-in C code (for a poll or select: waiting for the network, i.e. idle)",
}
_COLOURS = {"perf": "#e8a33d", "nexios": "#5b8fd6", "uvicorn": "#9aa5b1", "asyncio": "#c3c9cf", "uvloop": "#c3c9cf",
            "asyncpg": "#5fb37a", "redis": "#d9675b", "orjson": "#b589d6", "prometheus_client": "#d6c15b"}


def package_of(file_path_short: str) -> str:
    """The top-level package a frame's file belongs to (``asyncpg/connection.py`` -> ``asyncpg``)."""
    path = file_path_short.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    if path.startswith("<"):  # <built-in>, <frozen importlib._bootstrap>
        return "builtins"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") if "/" in path or head.endswith(".py") else head


def _root(profile: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] | None = profile.get("root_frame")
    if root is None:
        raise ValueError("profile has no root_frame: pass pyinstrument's JSON (ProfiledServer.end())")
    return root


def _frames(frame: dict[str, Any], depth: int = 0, start: float = 0.0) -> Iterator[tuple[dict[str, Any], int, float]]:
    """Every real frame with its depth and start offset (seconds from the left edge)."""
    yield frame, depth, start
    offset = start
    for child in frame.get("children", []):
        if not child.get("function", "").startswith("["):  # pyinstrument's [self]/[await] pseudo-frames
            yield from _frames(child, depth + 1, offset)
        offset += child["time"]


def flame_svg(profile: dict[str, Any], *, title: str = "", width: int = 960, row: int = 17,
              min_px: float = 0.6) -> str:
    """The profile as a flame graph (SVG text): the root at the bottom, callees above, width by time.

    Boxes narrower than ``min_px`` pixels are left out; hovering a box shows its function,
    file, time and share.
    """
    root = _root(profile)
    total = root["time"] or 1.0
    boxes = [(f, d, s) for f, d, s in _frames(root) if f["time"] / total * width >= min_px]
    depth = max((d for _, d, _ in boxes), default=0) + 1
    top = 24 if title else 4
    height = top + depth * row + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    if title:
        parts.append(f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>')
    for frame, d, start in boxes:
        x, w = start / total * width, frame["time"] / total * width
        y = top + (depth - 1 - d) * row
        name, where = frame.get("function", "?"), f"{frame.get('file_path_short', '?')}:{frame.get('line_no', '?')}"
        colour = _COLOURS.get(package_of(frame.get("file_path_short", "")), "#dde1e5")
        tip = html.escape(f"{name} ({where}): {frame['time'] * 1e3:,.1f} ms, {frame['time'] / total:.1%}")
        parts.append(f'<g><title>{tip}</title><rect x="{x:.2f}" y="{y}" width="{max(w - 0.4, 0.1):.2f}" '
                     f'height="{row - 1}" fill="{colour}" rx="1"/>')
        chars = int((w - 4) / 6.2)  # ~6 px a character at 11 px
        if chars >= 3:
            label = name if len(name) <= chars else name[:chars - 1] + "…"
            parts.append(f'<text x="{x + 2:.2f}" y="{y + row - 5}">{html.escape(label)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


#: Packages that are the runtime's own machinery (the trunk), not what the server did.
RUNTIME = frozenset({"asyncio", "uvloop", "runpy", "selectors", "threading", "concurrent"})


def widest_frames(profile: dict[str, Any], *, n: int = 3, through: float = 0.9) -> pd.DataFrame:
    """The ``n`` widest boxes where the time *divides*: functions outside the runtime's machinery
    (:data:`RUNTIME`) that no single callee accounts for ``through`` (90%) of. A wrapper that
    only passes the request on (a middleware around everything) is skipped; the box above it
    that splits the time is named instead. Each function's time is summed over its stacks,
    counted once per stack (recursion does not double it).

    Columns: ``function``, ``file``, ``package``, ``what`` (the package in words), ``seconds``, ``share``.
    """
    root = _root(profile)
    total = root["time"] or 1.0
    widths: dict[tuple[str, str], float] = {}

    def visit(frame: dict[str, Any], on_stack: frozenset[tuple[str, str]]) -> None:
        key = (frame.get("function", "?"), f"{frame.get('file_path_short', '?')}:{frame.get('line_no', '?')}")
        children = [c for c in frame.get("children", []) if not c.get("function", "").startswith("[")]
        widest_child = max((c["time"] for c in children), default=0.0)
        passes_on = widest_child >= through * frame["time"]
        if key not in on_stack and not passes_on and package_of(frame.get("file_path_short", "")) not in RUNTIME:
            widths[key] = widths.get(key, 0.0) + frame["time"]
        for child in children:
            visit(child, on_stack | {key})

    visit(root, frozenset())
    rows = []
    for (function, where), seconds in widths.items():
        package = package_of(where.rsplit(":", 1)[0])
        rows.append({"function": function, "file": where, "package": package,
                     "what": PACKAGES.get(package, package), "seconds": seconds, "share": seconds / total})
    frame = pd.DataFrame(rows, columns=["function", "file", "package", "what", "seconds", "share"])
    return frame.sort_values("seconds", ascending=False).head(n).reset_index(drop=True)

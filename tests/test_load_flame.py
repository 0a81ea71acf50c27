"""The flame graph of a server under load: a window that leaves the startup out, an SVG that
draws every sampled stack, and the widest frames named."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from perf.load import ClosedModel, Scenario, run_load
from perf.load.analysis import ProfiledServer, flame_svg, widest_frames
from perf.load.analysis.flame import package_of


def _functions(frame: dict[str, Any]) -> set[str]:
    return {frame["function"], *(f for child in frame.get("children", []) for f in _functions(child))}


async def test_a_window_profile_has_the_load_and_not_the_startup() -> None:
    with ProfiledServer(["perf.load.demo_server", "--port", "{port}"]) as server:
        server.begin()
        # 50 ms asleep per request against ~1 ms of handling: the stall stays the widest frame even
        # when other workers slow the handling 10x (at /stall/5 a busy CI machine made __call__ widest)
        result = await run_load(server.url, model=ClosedModel(users=4, duration=1.0),
                                scenario=Scenario.single("/stall/50"))
        profile = server.end()
    assert result.completed > 20
    seen = _functions(profile["root_frame"])
    assert "sleep" in seen  # the stall the load asked for
    assert "_find_and_load" not in seen and "run_module" not in seen  # no import, no module start-up

    svg = flame_svg(profile, title="demo server, /stall/50")
    tree = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    tips = [t.text or "" for t in tree.iter(f"{ns}title")]
    assert any(tip.startswith("sleep (") for tip in tips)
    assert len(list(tree.iter(f"{ns}rect"))) == len(tips) + 1  # one box per frame, plus the background

    widest = widest_frames(profile, n=3)
    assert widest["function"].iloc[0] == "sleep"  # where the time went, not a wrapper around it
    assert widest["share"].between(0, 1).all() and widest["share"].is_monotonic_decreasing
    assert not widest["package"].isin(["asyncio", "uvloop"]).any()


def test_frames_are_named_by_their_package() -> None:
    assert package_of("asyncpg/connection.py") == "asyncpg"
    assert package_of(".venv/lib/python3.11/site-packages/uvicorn/protocols/http/httptools_impl.py") == "uvicorn"
    assert package_of("<built-in>") == "builtins"
    with pytest.raises(ValueError, match="no root_frame"):
        flame_svg({})

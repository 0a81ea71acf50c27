"""perf.compat: every private name of a dependency that ``perf`` still uses exists, with the shape
``perf/compat`` relies on, in the installed version.

A failure names the dependency, the private name, the installed version and the pin, so an
upgrade that moves a name is caught here rather than as a wrong answer somewhere else.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from pathlib import Path

import asyncpg
import pytest
from asyncpg.protocol.protocol import BaseProtocol

from perf.compat import asyncpg as compat_asyncpg

ROOT = Path(__file__).resolve().parents[1]


def pin(dist: str) -> str:
    """The version ``requirements.txt`` pins ``dist`` to."""
    found = re.search(rf"^{re.escape(dist)}==([^\s;#]+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert found, f"{dist} is not pinned in requirements.txt"
    return found.group(1)


def moved(dist: str, name: str, module: str, checked: str) -> str:
    """The message for a private name that is gone or changed shape."""
    return (f"{dist} {importlib.metadata.version(dist)} (pinned {pin(dist)}; perf/compat/{module}.py checked "
            f"{checked}): {name} is gone or changed shape; find its new spelling upstream, or the public API "
            f"that replaced it, and update perf/compat/{module}.py and the list in docs/techniques.md")


@pytest.mark.parametrize(("module", "dist"), [("asyncpg", "asyncpg")])
def test_each_compat_module_was_checked_against_the_pinned_version(module: str, dist: str) -> None:
    checked = importlib.import_module(f"perf.compat.{module}").CHECKED
    assert checked == pin(dist), (f"perf/compat/{module}.py was checked against {dist} {checked}, but "
                                  f"requirements.txt pins {pin(dist)}: re-check its names and update CHECKED")


# -- asyncpg ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["_top_xact", "_listeners", "_log_listeners", "_transport", "_protocol"])
def test_asyncpg_connection_slots(name: str) -> None:
    assert name in getattr(asyncpg.Connection, "__slots__", ()), moved(
        "asyncpg", f"Connection.{name}", "asyncpg", compat_asyncpg.CHECKED)


def test_asyncpg_protocol_cancellation() -> None:
    ok = (callable(getattr(BaseProtocol, "_is_cancelling", None))
          and inspect.iscoroutinefunction(getattr(BaseProtocol, "_wait_for_cancellation", None)))
    assert ok, moved("asyncpg", "BaseProtocol._is_cancelling / async _wait_for_cancellation", "asyncpg",
                     compat_asyncpg.CHECKED)


async def test_asyncpg_names_on_a_live_connection(pg_conn: asyncpg.Connection) -> None:
    where = ("asyncpg", "asyncpg", compat_asyncpg.CHECKED)
    assert isinstance(pg_conn._listeners, dict), moved(where[0], "Connection._listeners (a dict)", *where[1:])
    assert isinstance(pg_conn._log_listeners, set), moved(where[0], "Connection._log_listeners (a set)", *where[1:])
    transport = compat_asyncpg.transport(pg_conn)
    assert transport is not None and transport.get_protocol() is not None, moved(
        where[0], "Connection._transport (the asyncio transport)", *where[1:])
    assert not compat_asyncpg.left_unfinished(pg_conn)
    transaction = pg_conn.transaction()
    await transaction.start()
    assert compat_asyncpg.left_unfinished(pg_conn), moved(where[0], "Connection._top_xact (set by start())",
                                                          *where[1:])
    await pg_conn.execute("ROLLBACK")  # behind the Transaction object's back: it stays set
    await compat_asyncpg.settle(pg_conn)
    assert not compat_asyncpg.left_unfinished(pg_conn)
    async with pg_conn.transaction():  # a fresh top-level transaction, not a savepoint outside one
        assert pg_conn.is_in_transaction()
    await pg_conn.add_listener("perf_compat", lambda *args: None)
    compat_asyncpg.forget_listeners(pg_conn)
    assert pg_conn._listeners == {}, moved(where[0], "Connection._listeners (cleared by reset)", *where[1:])
    await pg_conn.execute("UNLISTEN *")

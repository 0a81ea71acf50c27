"""perf.compat: every private name of a dependency that ``perf`` still uses exists, with the shape
``perf/compat`` relies on, in the installed version.

A failure names the dependency, the private name, the installed version and the pin, so an
upgrade that moves a name is caught here rather than as a wrong answer somewhere else.
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib
import importlib.metadata
import inspect
import math
import re
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from asyncpg.protocol.protocol import BaseProtocol
from nexios import NexiosApp
from nexios.http import Request, Response
from nexios.http.response import BaseResponse
from nexios.routing import Route
from pgqueuer import Queries
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment, QueryQueueBuilder
from pgqueuer.domain.settings import DBSettings
from prometheus_client import CollectorRegistry, Histogram
from redis.asyncio.connection import ConnectionPoolInterface
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from perf.api.app import ApiNexios
from perf.api.errors import SafeRoute
from perf.api.protocol import BoundedHttpProtocol
from perf.cache.redis_cache import BoundedConnectionPool
from perf.compat import asyncpg as compat_asyncpg
from perf.compat import nexios as compat_nexios
from perf.compat import pgqueuer as compat_pgqueuer
from perf.compat import prometheus_client as compat_prometheus

ROOT = Path(__file__).resolve().parents[1]


def pin(dist: str) -> str:
    """The version ``requirements.txt`` pins ``dist`` to."""
    name = re.escape(dist).replace("_", "[-_]")  # prometheus_client is pinned as prometheus-client
    found = re.search(rf"^{name}==([^\s;#]+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert found, f"{dist} is not pinned in requirements.txt"
    return found.group(1)


def moved(dist: str, name: str) -> str:
    """The message for a private name of ``dist`` (also the name of its compat module) gone or changed shape."""
    checked = importlib.import_module(f"perf.compat.{dist}").CHECKED
    return (f"{dist} {importlib.metadata.version(dist)} (pinned {pin(dist)}; perf/compat/{dist}.py checked "
            f"{checked}): {name} is gone or changed shape; find its new spelling upstream, or the public API "
            f"that replaced it, and update perf/compat/{dist}.py and the list in docs/techniques.md")


@pytest.mark.parametrize("module", ["asyncpg", "nexios", "uvicorn", "pgqueuer", "prometheus_client"])
def test_each_compat_module_was_checked_against_the_pinned_version(module: str) -> None:
    checked = importlib.import_module(f"perf.compat.{module}").CHECKED
    assert checked == pin(module), (f"perf/compat/{module}.py was checked against {module} {checked}, but "
                                    f"requirements.txt pins {pin(module)}: re-check its names and update CHECKED")


# -- asyncpg ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["_top_xact", "_listeners", "_log_listeners", "_transport", "_protocol"])
def test_asyncpg_connection_slots(name: str) -> None:
    assert name in getattr(asyncpg.Connection, "__slots__", ()), moved(
        "asyncpg", f"Connection.{name}")


def test_asyncpg_protocol_cancellation() -> None:
    ok = (callable(getattr(BaseProtocol, "_is_cancelling", None))
          and inspect.iscoroutinefunction(getattr(BaseProtocol, "_wait_for_cancellation", None)))
    assert ok, moved("asyncpg", "BaseProtocol._is_cancelling / async _wait_for_cancellation")


async def test_asyncpg_names_on_a_live_connection(pg_conn: asyncpg.Connection) -> None:
    assert isinstance(pg_conn._listeners, dict), moved("asyncpg", "Connection._listeners (a dict)")
    assert isinstance(pg_conn._log_listeners, set), moved("asyncpg", "Connection._log_listeners (a set)")
    transport = compat_asyncpg.transport(pg_conn)
    assert transport is not None and transport.get_protocol() is not None, moved(
        "asyncpg", "Connection._transport (the asyncio transport)")
    assert not compat_asyncpg.left_unfinished(pg_conn)
    transaction = pg_conn.transaction()
    await transaction.start()
    assert compat_asyncpg.left_unfinished(pg_conn), moved("asyncpg", "Connection._top_xact (set by start())")
    await pg_conn.execute("ROLLBACK")  # behind the Transaction object's back: it stays set
    await compat_asyncpg.settle(pg_conn)
    assert not compat_asyncpg.left_unfinished(pg_conn)
    async with pg_conn.transaction():  # a fresh top-level transaction, not a savepoint outside one
        assert pg_conn.is_in_transaction()
    await pg_conn.add_listener("perf_compat", lambda *args: None)
    compat_asyncpg.forget_listeners(pg_conn)
    assert pg_conn._listeners == {}, moved("asyncpg", "Connection._listeners (cleared by reset)")
    await pg_conn.execute("UNLISTEN *")


# -- nexios ----------------------------------------------------------------------------------------

def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})


def test_nexios_match_status() -> None:
    ok = (set(compat_nexios.MatchStatus.__members__) == {"NONE", "PARTIAL", "FULL"}
          and "MatchStatus" in str(inspect.signature(Route.match).return_annotation))
    assert ok, moved("nexios", "nexios.routing._utils.MatchStatus (Route.match's return type)")


async def test_nexios_base_response_sends_what_prepared_response_sets() -> None:
    assert set(vars(BaseResponse(b"x"))) == {"charset", "status_code", "raw_headers", "_body", "content_type"}, moved(
        "nexios", "BaseResponse's attributes (_body, raw_headers, ...)")
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    response = compat_nexios.PreparedResponse(b'{"a":1}', 201, {"X-Id": "7"})
    await response({"type": "http"}, receive, send)  # type: ignore[arg-type]
    start, body = sent[0], sent[-1]
    assert start.get("status") == 201 and (b"x-id", b"7") in start["headers"] and body.get("body") == b'{"a":1}', moved(
        "nexios", "BaseResponse.__call__ sending _body and raw_headers")


def test_nexios_response_manager_attributes() -> None:
    request = _request()
    manager = Response(request)
    assert set(vars(manager)) == {"_response", "_request", "_initialized"}, moved(
        "nexios", "NexiosResponse.__init__'s _response, _request, _initialized")
    assert request.state._state.get("_response_instance") is manager, moved(
        "nexios", "NexiosResponse.__new__ storing the manager in request.state")
    request = _request()
    detached = compat_nexios.DetachedResponse(request)
    assert set(vars(detached)) == set(vars(manager)) and "_response_instance" not in request.state._state
    detached.json({"a": 1}, status_code=201)
    assert detached.get_response().status_code == 201


# -- uvicorn ---------------------------------------------------------------------------------------

UVICORN_HOOKS = ["data_received", "on_message_begin", "on_url", "on_headers_complete", "on_body",
                 "on_message_complete", "on_response_complete", "send_400_response", "connection_made",
                 "connection_lost", "shutdown", "_unset_keepalive_if_required"]


def _assigned(cls: type) -> set[str]:
    """The ``self.NAME = ...`` attributes ``cls``'s own methods set."""
    return set(re.findall(r"^\s*self\.(\w+)(?:\s*:[^=]+)?\s*=", inspect.getsource(cls), re.MULTILINE))


@pytest.mark.parametrize("name", UVICORN_HOOKS)
def test_uvicorn_httptools_hooks(name: str) -> None:
    assert callable(getattr(HttpToolsProtocol, name, None)), moved(
        "uvicorn", f"HttpToolsProtocol.{name}")


def test_uvicorn_httptools_attributes() -> None:
    for cls, names in ((HttpToolsProtocol, {"parser", "url", "headers", "cycle", "transport", "flow", "loop",
                                            "timeout_keep_alive_task"}),
                       (RequestResponseCycle, {"keep_alive", "more_body", "response_started", "response_complete",
                                               "disconnected", "message_event"})):
        missing = sorted(names - _assigned(cls))
        assert not missing, moved("uvicorn", f"{cls.__name__}.{', '.join(missing)}")


# -- pgqueuer --------------------------------------------------------------------------------------

def test_pgqueuer_settings_and_query_builders() -> None:
    assert {"db_schema", "channel", "queue_table"} <= set(DBSettings.model_fields), moved(
        "pgqueuer", "pgqueuer.domain.settings.DBSettings(db_schema=, channel=, queue_table)")
    for builder in (QueryBuilderEnvironment, QueryQueueBuilder):
        assert "settings" in {field.name for field in dataclasses.fields(builder)}, moved(
            "pgqueuer", f"pgqueuer.adapters.persistence.qb.{builder.__name__}(settings=)")
    assert {"qbe", "qbq"} <= {field.name for field in dataclasses.fields(Queries)}, moved(
        "pgqueuer", "Queries(qbe=, qbq=)")
    queries = compat_pgqueuer.SchemaQueries("Perf_Compat")
    assert (queries.channel, queries.queue_table) == ("pgqueuer_perf_compat", "pgqueuer")
    assert "perf_compat" in queries.environment.build_install_query(), moved(
        "pgqueuer", "QueryBuilderEnvironment placing the tables in DBSettings.db_schema")


# -- prometheus_client -----------------------------------------------------------------------------

def test_prometheus_histogram_storage_folds_to_what_observe_records() -> None:
    bounds = (0.001, 0.01, 0.1)
    values = [0.0005, 0.001, 0.002, 0.05, 0.5, 3.0, 0.001]
    one_by_one, folded = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h", "h", ["r"], buckets=bounds, registry=one_by_one).labels("x")
    for value in values:
        reference.observe(value)
    child = Histogram("h", "h", ["r"], buckets=bounds, registry=folded).labels("x")
    try:
        assert compat_prometheus.upper_bounds(child) == (*bounds, math.inf)
        counts = [0] * (len(bounds) + 1)
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
        compat_prometheus.observe_counts(child, counts, sum(values))
    except (AttributeError, TypeError) as error:
        raise AssertionError(moved("prometheus_client", f"Histogram child _upper_bounds/_buckets/_sum ({error})")) \
            from error
    samples = {(s.name, s.labels.get("le")): s.value for m in folded.collect() for s in m.samples
               if not s.name.endswith("_created")}
    expected = {(s.name, s.labels.get("le")): s.value for m in one_by_one.collect() for s in m.samples
                if not s.name.endswith("_created")}
    assert samples == expected, moved("prometheus_client", "Histogram child buckets (per bucket, not cumulative)")
    with pytest.raises(ValueError, match="counts has 2 buckets, the histogram 4"):
        compat_prometheus.observe_counts(child, [1, 1], 0.1)


# -- redis-py: public API only ---------------------------------------------------------------------

def test_redis_pool_overrides_only_the_public_pool_interface() -> None:
    overridden = {name for name in vars(BoundedConnectionPool) if not name.startswith("_")} - {"get_connection",
                                                                                               "release"}
    assert not overridden, f"BoundedConnectionPool overrides more than get_connection/release: {overridden}"
    assert {"get_connection", "release"} <= ConnectionPoolInterface.__abstractmethods__, (
        f"redis {importlib.metadata.version('redis')} (pinned {pin('redis')}): get_connection/release are no "
        "longer redis.asyncio's public pool interface (ConnectionPoolInterface); re-check BoundedConnectionPool")


# -- our subclasses of dependency classes ----------------------------------------------------------

async def _handler(request: Request, response: Response) -> Response:
    return response


@pytest.mark.parametrize(("ours", "theirs", "make"), [
    (BoundedHttpProtocol, HttpToolsProtocol, None),
    (BoundedConnectionPool, redis.ConnectionPool, lambda: redis.ConnectionPool(max_connections=2)),
    (SafeRoute, Route, lambda: Route("/x", _handler)),
    (ApiNexios, NexiosApp, NexiosApp),
], ids=["uvicorn", "redis", "nexios-route", "nexios-app"])
def test_our_subclasses_attributes_shadow_none_of_the_dependencys(ours: type, theirs: type, make: object) -> None:
    """An attribute of ours that the dependency starts using too would silently replace its own."""
    own = _assigned(ours) | {name for name in vars(ours) if name.startswith("_") and not name.startswith("__")}
    own.discard("_abc_impl")  # every subclass of an ABC gets its own
    upstream = set(dir(theirs)) | _assigned(theirs) | (set(vars(make())) if callable(make) else set())
    assert sorted(own & upstream) == [], (f"{theirs.__module__}.{theirs.__name__} now has attributes named like "
                                          f"{ours.__module__}.{ours.__name__}'s own: rename ours")

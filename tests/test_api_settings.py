"""perf.api.settings is the single source of the API's settings: the CLI flags, the child
process' argv and the worker's JSON are all derived from ApiSettings' fields."""

from __future__ import annotations

import dataclasses

import pytest

from perf.api.cli import build_parser, flag, settings_argv, settings_from_args
from perf.api.server import ApiServer
from perf.api.settings import ApiSettings

URL = "postgresql://u@localhost/db"


def test_every_field_is_a_flag_and_nothing_else_is():
    parser = build_parser()
    flags = {option for action in parser._actions for option in action.option_strings}
    fields = {flag(f.name) for f in dataclasses.fields(ApiSettings)}
    server_own = {"-h", "--help", "--host", "--port", "--workers", "--server", "--log-level"}
    bools = {"--no-" + flag(f.name)[2:] for f in dataclasses.fields(ApiSettings) if f.type == "bool"}
    assert flags == fields | server_own | bools


def test_flags_not_given_keep_the_fields_defaults():
    args = build_parser().parse_args(["--database-url", URL])
    settings = settings_from_args(args, api_token="t" * 20)
    assert settings == ApiSettings(database_url=URL, api_token="t" * 20)
    assert settings.cache_namespace == settings.schema == "api"  # one default, in one place


def test_argv_round_trips_every_field():
    original = ApiSettings(database_url=URL, redis_url="redis://x:1/0", mode="baseline,+pool", schema="s1",
                           products=7, cache_namespace="ns", cache_ttl=1.5, pool_min=1, pool_max=3, max_body=99,
                           read_timeout=2.5, task_workers=2, task_queue_size=5, task_timeout=4.0,
                           upload_delay=0.2)
    rebuilt = settings_from_args(build_parser().parse_args(settings_argv(original)))
    assert rebuilt == original and rebuilt.api_token == original.api_token
    assert ApiSettings.from_json(original.to_json()) == original


def test_api_server_takes_settings_and_exposes_the_token():
    settings = ApiSettings(database_url=URL, schema="s2", mode="all,-cache")
    server = ApiServer(settings, workers=2)
    assert server.token == settings.api_token and len(server.token) >= 16
    assert server.auth_headers == {"authorization": f"Bearer {settings.api_token}"}
    assert "--mode=naive,+pool,+keyset,+compression,+join" in server.command
    assert not any(settings.api_token in word for word in server.command)  # off the command line: `ps` shows it
    assert server.env == {"PERF_API_TOKEN": settings.api_token}
    assert ApiSettings(database_url=URL).api_token != ApiSettings(database_url=URL).api_token  # one per run
    with pytest.raises(ValueError, match="server='hypercorn'"):
        ApiServer(settings, server="hypercorn")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"read_timeout": 0}, "read_timeout=0"), ({"api_token": "short"}, "api_token"),
    ({"products": -1}, "products=-1"), ({"schema": "a-b"}, "schema='a-b'"),
])
def test_bad_settings_name_the_field(kwargs, message):  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        ApiSettings(database_url=URL, **kwargs)


def test_settings_round_trip_through_argv_when_a_value_starts_with_a_dash() -> None:

    token = "-" + "x" * 31  # token_urlsafe can start with "-": argparse must not read it as an option
    settings = ApiSettings(database_url="postgresql://localhost/perf", redis_url=None, api_token=token)
    args = build_parser().parse_args(settings_argv(settings))
    assert settings_from_args(args).api_token == token


def test_the_served_app_has_no_debug_mode():
    """Nexios' debug mode sends tracebacks to clients: the API has no switch for it."""
    from perf.api.app import create_app

    assert "debug" not in {f.name for f in dataclasses.fields(ApiSettings)}
    assert create_app(ApiSettings(database_url=URL)).nexios.debug is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--debug"])

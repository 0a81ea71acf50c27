from pathlib import Path

import pytest

from perf.config import ConfigError, Settings, load_settings


def test_defaults_are_embedded_quick() -> None:
    settings = load_settings({})
    assert settings.database_url is None and settings.redis_url is None
    assert settings.embedded and settings.quick and settings.profile == "quick"
    assert settings.state_dir.name == ".perf" and settings.build_dir.name == "build"
    assert settings.pick(1, 2) == 1


def test_reads_every_variable(tmp_path: Path) -> None:
    settings = load_settings({
        "DATABASE_URL": "postgresql://u:p@db.example:5433/app",
        "REDIS_URL": "redis://cache:6380/2",
        "PERF_PROFILE": "FULL",
        "PERF_STATE_DIR": str(tmp_path / "state"),
        "PERF_BUILD_DIR": str(tmp_path / "out"),
    })
    assert settings == Settings(
        database_url="postgresql://u:p@db.example:5433/app",
        redis_url="redis://cache:6380/2",
        profile="full",
        state_dir=(tmp_path / "state").resolve(),
        build_dir=(tmp_path / "out").resolve(),
    )
    assert not settings.embedded and not settings.quick and settings.pick(1, 2) == 2


def test_empty_values_count_as_unset() -> None:
    settings = load_settings({"DATABASE_URL": "  ", "REDIS_URL": "", "PERF_PROFILE": ""})
    assert settings.database_url is None and settings.redis_url is None and settings.profile == "quick"


def test_only_one_external_server_still_embeds_the_other() -> None:
    assert load_settings({"REDIS_URL": "redis://localhost:6379/0"}).embedded


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PERF_PROFILE": "fast"}, "PERF_PROFILE='fast'"),
        ({"DATABASE_URL": "mysql://localhost/db"}, "DATABASE_URL='mysql://localhost/db'"),
        ({"DATABASE_URL": "postgresql://localhost:99999/db"}, "invalid port"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379'"),
        ({"REDIS_URL": "http://localhost:6379"}, "scheme must be one of"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert fragment in str(info.value)


def test_state_dir_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="PERF_STATE_DIR=.*not a directory"):
        load_settings({"PERF_STATE_DIR": str(a_file)})


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.profile = "full"  # type: ignore[misc]

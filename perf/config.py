"""Settings for the whole workbook, read from the environment exactly once.

Technique code never reads ``os.environ``: it takes keyword arguments. Only this
module looks at the environment, and it does so in :func:`load_settings`, which
turns every variable into a typed, validated field of one frozen object.

Variables
---------
``DATABASE_URL``   PostgreSQL DSN to use instead of the embedded server.
``REDIS_URL``      Redis URL to use instead of the embedded server.
``PERF_PROFILE``   ``quick`` (small data, CI and live presenting) or ``full`` (real numbers).
``PERF_STATE_DIR`` Where embedded servers keep their data, logs and state file.
``PERF_BUILD_DIR`` Where executed notebooks, HTML and chart PNGs are written.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

Profile = Literal["quick", "full"]
PROFILES: tuple[Profile, ...] = ("quick", "full")

#: The repository root when installed editable (the supported way); state and
#: build directories default to folders beside ``perf/`` so every notebook and
#: test, whatever its working directory, finds the same embedded servers.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """An environment variable holds a value the workbook cannot use."""


@dataclass(frozen=True)
class Settings:
    """Validated workbook settings. Build with :func:`load_settings` or :func:`get_settings`."""

    database_url: str | None = None
    redis_url: str | None = None
    profile: Profile = "quick"
    state_dir: Path = field(default_factory=lambda: PROJECT_ROOT / ".perf")
    build_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "build")
    replay: str | None = None  # a run id: measuring steps return that run's results (perf.runs.replay)

    @property
    def quick(self) -> bool:
        """True in the quick profile (small data, short runs)."""
        return self.profile == "quick"

    @property
    def embedded(self) -> bool:
        """True when at least one service must be started by the workbook itself."""
        return self.database_url is None or self.redis_url is None

    def pick(self, quick: T, full: T) -> T:
        """Return ``quick`` or ``full`` depending on the profile (sizes, durations, repeats)."""
        return quick if self.quick else full


def _validate_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{name}={value!r} is not a valid URL: the scheme must be one of "
            f"{', '.join(schemes)} (for example {schemes[0]}://localhost/...). "
            f"Unset {name} to use the embedded server instead."
        )
    if not parts.hostname and not parts.path and "host=" not in (parts.query or ""):
        raise ConfigError(f"{name}={value!r} names no host. Unset {name} to use the embedded server.")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} has an invalid port: {exc}") from exc
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from ``environ`` (default: ``os.environ``).

    Empty variables count as unset. Raises :class:`ConfigError` naming the
    variable, the bad value and how to fix it.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    database_url = get("DATABASE_URL")
    if database_url is not None:
        _validate_url("DATABASE_URL", database_url, ("postgresql", "postgres"))
    redis_url = get("REDIS_URL")
    if redis_url is not None:
        _validate_url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))

    profile = (get("PERF_PROFILE") or "quick").lower()
    if profile not in PROFILES:
        raise ConfigError(
            f"PERF_PROFILE={env.get('PERF_PROFILE')!r} is not a profile: use 'quick' "
            "(small data, a minute or two per notebook) or 'full' (real numbers)."
        )

    defaults = Settings()
    state_dir = Path(get("PERF_STATE_DIR") or defaults.state_dir).expanduser().resolve()
    build_dir = Path(get("PERF_BUILD_DIR") or defaults.build_dir).expanduser().resolve()
    for name, path in (("PERF_STATE_DIR", state_dir), ("PERF_BUILD_DIR", build_dir)):
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{name}={str(path)!r} exists and is not a directory: point it at a folder.")

    replay = get("PERF_REPLAY")
    if replay is not None and (replay in {".", ".."} or "/" in replay or "\\" in replay):
        raise ConfigError(f"PERF_REPLAY={replay!r} is not a run id: name a folder of build/runs "
                          "(`python3 tasks.py runs` lists them), or unset it to measure.")
    if replay is not None:
        profile = _replayed_profile(build_dir, replay, profile, asked=get("PERF_PROFILE"))

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        profile=profile,  # validated above: one of PROFILES
        state_dir=state_dir,
        build_dir=build_dir,
        replay=replay,
    )


def _replayed_profile(build_dir: Path, replay: str, profile: Profile, *, asked: str | None) -> Profile:
    """A replay takes the profile its run was recorded in: the notebooks' prose names the rounds
    and durations that profile measured (a full run's 5 s rounds are not the quick profile's 0.5 s)."""
    meta_path = build_dir / "runs" / replay / "run.json"
    try:
        recorded = str(json.loads(meta_path.read_text(encoding="utf-8"))["profile"])
    except (OSError, ValueError, KeyError):
        return profile  # a missing run is reported where the replay opens it, naming the runs folder
    if recorded not in PROFILES:
        return profile
    if asked is not None and asked.lower() != recorded:
        raise ConfigError(f"PERF_PROFILE={asked!r} but PERF_REPLAY={replay!r} was recorded in the {recorded!r} "
                          "profile: unset PERF_PROFILE (a replay takes its run's profile)")
    return recorded


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use and then fixed."""
    return load_settings()

"""Replay: a measuring step returns a recorded run's result without measuring; the run stays comparable."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from perf.config import ConfigError, get_settings, load_settings
from perf.load.results import LoadResult
from perf.runs import compare_runs, start_run
from perf.runs.replay import ReplayMissing, replay_note, replayable, replayable_sync
from perf.runs.results_json import ResultFormatError, decode, encode
from perf.runs.store import Run, set_current_run


@dataclasses.dataclass
class Sweep:
    """Stands in for a measuring result: frames and numbers in a dataclass."""

    frame: pd.DataFrame
    best_users: int


@pytest.fixture
def recorded() -> Iterator[Run]:
    """A run that measured ``sweep`` for notebook ``98_replay`` (its result and a summary frame)."""
    run = start_run("98_replay", kind="notebook", source="98_replay")
    set_current_run(run)
    frame = pd.DataFrame({"users": [1, 8, 8, 8], "median": [10.0, 40.0, 40.0, 40.0],
                          "q1": [9.0, 38.0, 38.0, 38.0], "q3": [11.0, 42.0, 42.0, 42.0]})
    calls = []

    async def measure() -> Sweep:
        calls.append(1)
        return Sweep(frame, best_users=8)

    result = asyncio.run(replayable("sweep", measure))
    assert calls == [1] and result.best_users == 8
    run.record("throughput", result.frame, unit="rps")
    try:
        yield run
    finally:
        set_current_run(None)


def _replaying(run_id: str) -> object:
    return dataclasses.replace(get_settings(), replay=run_id)


def test_replay_returns_the_recorded_result_without_measuring(recorded: Run) -> None:
    settings = _replaying(recorded.id)
    replaying = start_run("98_replay", kind="notebook", source="98_replay")
    set_current_run(replaying)

    async def measure() -> Sweep:
        raise AssertionError("a replayed step must not measure")

    result = asyncio.run(replayable("sweep", measure, settings=settings))  # type: ignore[arg-type]
    assert result.best_users == 8 and result.frame.equals(pd.read_csv(recorded.path / "98_replay" / "throughput.csv"))
    assert replaying.meta()["replay_of"] == recorded.id
    note = replay_note(settings)  # type: ignore[arg-type]
    assert note is not None and recorded.id in note and "not measured now" in note

    # downstream code records the same frames, so the two runs compare like any two
    replaying.record("throughput", result.frame, unit="rps")
    table = compare_runs(recorded, replaying)
    assert set(table["frame"]) == {"throughput"} and (table["ratio"] == 1.0).all()


def test_without_replay_a_sync_step_measures_and_saves(recorded: Run) -> None:
    assert get_settings().replay is None and replay_note() is None
    assert replayable_sync("count", lambda: 41 + 1) == 42
    assert (recorded.path / "98_replay" / "replay" / "count.json").exists()


def test_a_name_the_run_never_saved_says_what_it_has(recorded: Run) -> None:
    set_current_run(start_run("98_replay", kind="notebook", source="98_replay"))
    with pytest.raises(ReplayMissing, match=r"saved no result 'stress' for 98_replay \(it has: sweep\)"):
        replayable_sync("stress", lambda: 0, settings=_replaying(recorded.id))  # type: ignore[arg-type]


def test_an_unknown_run_and_a_path_are_refused() -> None:
    with pytest.raises(FileNotFoundError, match="no run 'nope'"):
        replayable_sync("x", lambda: 0, settings=_replaying("nope"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PERF_REPLAY='../etc' is not a run id"):
        load_settings({"PERF_REPLAY": "../etc"})


def test_a_saved_result_is_json_and_runs_no_code_it_carries(recorded: Run) -> None:
    """A run folder travels: a result file naming a callable (what a pickle could) is refused, nothing runs."""
    path = recorded.path / "98_replay" / "replay" / "sweep.json"
    assert json.loads(path.read_text())["__dataclass__"].endswith(":Sweep")
    path.write_text(json.dumps({"__dataclass__": "os:system", "fields": {"command": "touch /tmp/owned"}}))
    set_current_run(start_run("98_replay", kind="notebook", source="98_replay"))
    with pytest.raises(ReplayMissing, match="no longer loads"):
        replayable_sync("sweep", lambda: 0, settings=_replaying(recorded.id))  # type: ignore[arg-type]


def test_frames_numbers_and_dataclasses_round_trip_and_other_objects_are_named() -> None:
    frame = pd.DataFrame({"users": [1, 8], "rps": [10.5, 40.25], "label": ["a", "b"]}).set_index("users")
    value = {"sweep": Sweep(frame.reset_index(), best_users=8), (1, "x"): [np.float64(2.5), None, True]}
    back = decode(encode(value))
    assert back[(1, "x")] == [2.5, None, True] and back["sweep"].best_users == 8
    assert back["sweep"].frame.equals(frame.reset_index())
    assert decode(encode(frame)).equals(frame)
    with pytest.raises(ResultFormatError, match=r"result\['f'\] is a function"):
        encode({"f": lambda: 0})


def test_a_frame_keeps_its_index_levels_names_dtypes_and_attrs() -> None:
    """What a notebook reads off a result: ``queues.loc["memory"]``, a grouped frame, ``attrs["skipped"]``."""
    frame = pd.DataFrame({"engine": ["builtin", "locust"], "generators": [1, 2], "rps": [900.5, 1200.25],
                          "at": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:01"]).tz_localize("UTC"),
                          "took": pd.to_timedelta([1.5, 2.0], unit="s"), "kind": pd.Categorical(["a", "b"]),
                          0: [np.nan, 1.0]}).set_index(["engine", "generators"])
    frame.attrs["skipped"] = {"wrk": "wrk is not on PATH"}
    back = decode(encode(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == {"skipped": {"wrk": "wrk is not on PATH"}}
    series = frame["rps"]
    pd.testing.assert_series_equal(decode(encode(series)), series)
    # every float exactly (a scrape's t is a row's key when two runs are compared), objects by value
    exact = pd.DataFrame({"t": [0.3181939070018416, 0.1 + 0.2, 1 / 3, float("nan")], "tags": [["a"], {}, None, "x"]})
    pd.testing.assert_frame_equal(decode(encode(exact)), exact)
    with pytest.raises(ResultFormatError, match=r"result is a frame with 2 column levels"):
        encode(frame.reset_index().pivot(index="kind", columns="engine", values=["rps", "generators"]))


@dataclasses.dataclass
class ModeLike:
    mode: str
    result: LoadResult


def test_a_load_result_travels_as_its_own_dict_histograms_included() -> None:
    result = LoadResult(driver="builtin", model="closed, 4 users", duration=1.0)
    for i, latency in enumerate((0.001, 0.002, 0.004, 0.050)):
        result.record("GET /x", latency, 200 if i < 3 else 503, t=i * 0.2, server_timing="db;dur=0.5")
    result.scheduled = 4
    back = decode(encode([ModeLike("all", result)]))[0]
    assert isinstance(back.result, LoadResult) and back.mode == "all"
    assert back.result.to_dict()["summary"] == result.to_dict()["summary"]
    for hist, original in ((back.result.overall(), result.overall()),
                           (back.result.series_hist[0], result.series_hist[0])):  # 3 and 2 significant figures
        assert hist.percentiles() == original.percentiles()
    assert (back.result.status_counts, back.result.series, back.result.server_timing) == \
        (result.status_counts, result.series, result.server_timing)


def test_a_replay_takes_the_profile_its_run_was_recorded_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "runs" / "20261205-000000-workbook"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"id": run_dir.name, "profile": "full"}))
    env = {"PERF_BUILD_DIR": str(tmp_path), "PERF_REPLAY": run_dir.name}
    assert load_settings(env).profile == "full"  # its prose names the rounds that run measured
    assert load_settings({**env, "PERF_PROFILE": "full"}).profile == "full"
    with pytest.raises(ConfigError, match=r"PERF_PROFILE='quick' but PERF_REPLAY=.* recorded in the 'full' profile"):
        load_settings({**env, "PERF_PROFILE": "quick"})
    assert load_settings({"PERF_BUILD_DIR": str(tmp_path)}).profile == "quick"

"""Replay a recorded run: a measuring step hands back what an earlier run measured, at once.

An instructor records a full-profile run at home and presents from it in class. With
``PERF_REPLAY=<run id>`` a step wrapped in :func:`replayable` returns the result that run
saved under the same name and notebook instead of measuring; with no replay it measures as
always and saves its result, so every run can later be replayed. What follows a step (charts,
``record``, computed prose) runs unchanged on the result, so a replaying run writes the same
frames as a measuring one and ``runs compare`` treats the two alike; its ``run.json`` names the
run it replays (``replay_of``), and :func:`replay_note` says so in a sentence.

A result is saved as JSON (``<run>/<source>/replay/<name>.json``, :mod:`perf.runs.results_json`):
measuring results are dataclasses of frames and numbers, and a run folder travels, so loading
one never runs code it carries (unpickling would). A result is bound to the code that made it:
the note names the recorded commit, and a result that no longer loads raises with the fix
(record the run again with this code).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from perf.config import Settings, get_settings
from perf.runs.results_json import ResultFormatError, decode, encode
from perf.runs.store import Run, current_run, open_run

T = TypeVar("T")
REPLAY_DIR = "replay"


class ReplayMissing(LookupError):
    """The replayed run holds no result under the asked name."""


def replayed_run(settings: Settings | None = None) -> Run | None:
    """The run ``PERF_REPLAY`` names (``None`` when not replaying); raises naming the runs folder if absent."""
    run_id = (settings or get_settings()).replay
    return open_run(run_id) if run_id else None


def _path(run: Run, source: str, name: str) -> Path:
    return run.path / source / REPLAY_DIR / f"{name}.json"


def load_result(run: Run, source: str, name: str) -> Any:
    """The result ``run`` saved for ``source`` (a notebook) under ``name``."""
    path = _path(run, source, name)
    if not path.exists():
        saved = sorted(p.stem for p in path.parent.glob("*.json"))
        raise ReplayMissing(f"run {run.id} saved no result {name!r} for {source} (it has: "
                            f"{', '.join(saved) or 'none'}); replay a run recorded with this notebook, "
                            "or unset PERF_REPLAY to measure")
    try:
        return decode(path.read_bytes())
    except (ResultFormatError, TypeError, ValueError, KeyError) as exc:
        commit = (run.meta().get("git") or {}).get("commit")
        raise ReplayMissing(f"result {name!r} of run {run.id} (commit {commit}) no longer loads with this code "
                            f"({exc}); record the run again, or unset PERF_REPLAY") from exc


def save_result(run: Run, name: str, result: Any) -> Path:
    """Save ``result`` under ``name`` in ``run``'s folder for its source (JSON); return the file.
    Raises :class:`~perf.runs.results_json.ResultFormatError` naming a part JSON cannot hold."""
    path = _path(run, run.source, name)
    data = encode(result)  # before touching the folder: an unsavable result leaves nothing behind
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _replay(name: str, settings: Settings | None) -> tuple[bool, Any]:
    source_run = replayed_run(settings)
    if source_run is None:
        return False, None
    run = current_run()
    if run.meta().get("replay_of") != source_run.id:
        run.update(replay_of=source_run.id)
    return True, load_result(source_run, run.source, name)


async def replayable(name: str, measure: Callable[[], Awaitable[T]], *, settings: Settings | None = None) -> T:
    """``await measure()`` and save its result under ``name``; when replaying, the recorded result instead.

    ``measure`` is not called at all when replaying, so servers it would start stay down.

    >>> sweep = await replayable("sweep", lambda: run_sweep(url, users=USERS))  # doctest: +SKIP
    """
    replaying, result = _replay(name, settings)
    if replaying:
        return result  # type: ignore[no-any-return]
    measured = await measure()
    save_result(current_run(), name, measured)
    return measured


def replayable_sync(name: str, measure: Callable[[], T], *, settings: Settings | None = None) -> T:
    """:func:`replayable` for a step that is not a coroutine."""
    replaying, result = _replay(name, settings)
    if replaying:
        return result  # type: ignore[no-any-return]
    measured = measure()
    save_result(current_run(), name, measured)
    return measured


def replay_note(settings: Settings | None = None) -> str | None:
    """A sentence naming the replayed run, its profile, commit and machine (``None`` when not replaying)."""
    run = replayed_run(settings)
    if run is None:
        return None
    meta = run.meta()
    machine = meta.get("machine") or {}
    commit = ((meta.get("git") or {}).get("commit") or "unknown")[:10]
    cpus = machine.get("cpus_usable") or machine.get("cpus")
    return (f"Figures replayed from run {run.id} ({meta.get('profile')} profile, recorded {meta.get('started')}, "
            f"commit {commit}, {cpus} CPUs: {machine.get('cpu_model') or 'unknown CPU'}), not measured now.")

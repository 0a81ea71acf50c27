"""The machinery behind every exercise: a registry, one result type, and the learner's progress.

An exercise is an async function decorated with :func:`exercise`. It receives the
learner's code (a function, a SQL string, a list of SLOs…) plus the services, runs it
against real PostgreSQL and Redis, and reports each requirement as passed or failed.
It never raises for a wrong answer and never shows the solution. Hints come in levels, and
only when asked: ``check(..., hint=1)`` adds a nudge (where to look), ``hint=2`` the concept
(what the fix is, in words, never its code). Only a mistake in *calling* the check (an
unknown key, a hint level other than 0-2) raises.
"""

from __future__ import annotations

import inspect
import json
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf.config import Settings, get_settings


@dataclass
class Requirement:
    """One thing the check verified: what it is, whether it held, and what was seen."""

    text: str
    passed: bool
    seen: str = ""


@dataclass
class Report:
    """What an exercise's check found; it renders as a short Markdown list in a notebook."""

    requirements: list[Requirement] = field(default_factory=list)
    hint: str = ""

    def require(self, text: str, passed: bool, seen: str = "") -> bool:
        """Record one requirement; returns ``passed`` so a check can stop at the first failure."""
        self.requirements.append(Requirement(text, bool(passed), seen))
        return bool(passed)


HINT_LEVELS = ("", "nudge", "concept")


@dataclass
class ExerciseResult:
    """The outcome of :func:`check`: ``passed`` is True only when every requirement held.

    ``nudge`` (where to look) and ``hint`` (the concept) are always filled for a failed check;
    they are *shown* only up to ``hint_level``, the level the learner asked for.
    """

    key: str
    title: str
    passed: bool
    requirements: list[Requirement]
    hint: str
    seconds: float
    nudge: str = ""
    hint_level: int = 0

    def shown_hints(self) -> list[tuple[str, str]]:
        """``[(level name, text), ...]`` up to the level asked for (none for a passed check)."""
        if self.passed:
            return []
        return [(name, text) for name, text in (("nudge", self.nudge), ("concept", self.hint))[:self.hint_level]
                if text]

    def _offer(self) -> str:
        if self.passed or self.hint_level >= 2:
            return ""
        return f"stuck? run the check again with hint={self.hint_level + 1} for a {HINT_LEVELS[self.hint_level + 1]}"

    def __str__(self) -> str:
        lines = [f"Exercise {self.key} ({self.title}): {'PASSED' if self.passed else 'not yet'}"]
        for req in self.requirements:
            mark = "ok  " if req.passed else "FAIL"
            lines.append(f"  [{mark}] {req.text}" + (f" (seen: {req.seen})" if req.seen else ""))
        lines += [f"  hint ({name}): {text}" for name, text in self.shown_hints()]
        if self._offer():
            lines.append(f"  {self._offer()}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = "✅ passed" if self.passed else "❌ not yet"
        lines = [f"**Exercise {self.key}: {self.title}**: {head}", ""]
        for req in self.requirements:
            seen = f" (seen: `{req.seen}`)" if req.seen else ""
            lines.append(f"- {'✅' if req.passed else '❌'} {req.text}{seen}")
        shown = self.shown_hints()
        if shown or self._offer():
            lines.append("")
        lines += [f"*Hint ({name}):* {text}" for name, text in shown]
        if self._offer():
            lines.append(f"*{self._offer().capitalize()}.*")
        return "\n".join(lines)


Check = Callable[..., Awaitable[Report]]


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: ``key`` like ``"08.invalidation"``, its notebook, title and answer name."""

    key: str
    notebook: str
    title: str
    answer: str
    run: Check
    nudge: str = ""


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, *, title: str, answer: str, nudge: str) -> Callable[[Check], Check]:
    """Register ``run`` as the check of exercise ``key`` (``"NN.name"``, NN = the notebook);
    ``answer`` names what the learner's exercise cell defines (a function or a variable);
    ``nudge`` is the first-level hint: where to look, not what to write."""
    notebook = key.split(".", 1)[0]
    if not notebook.isdigit() or len(notebook) != 2:
        raise ValueError(f"key={key!r} must start with the notebook number, e.g. '08.invalidation'")
    if not nudge.strip():
        raise ValueError(f"exercise {key!r}: nudge= must say where to look (the first hint a learner asks for)")

    def register(run: Check) -> Check:
        EXERCISES[key] = Exercise(key, notebook, title, answer, run, nudge)
        return run

    return register


def _progress_file(settings: Settings) -> Path:
    return settings.state_dir / "exercises.json"


def _load_progress(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def check(key: str, *answer: Any, hint: int = 0, record: bool = True, settings: Settings | None = None,
                **services: Any) -> ExerciseResult:
    """Run the check of exercise ``key`` on the learner's ``answer`` against the real services.

    Returns an :class:`ExerciseResult` (shown as a checklist in a notebook); a wrong or
    unfinished answer (``NotImplementedError``, an exception in the learner's code) is a
    failed requirement, never an exception. ``hint``: 0 shows no hint (the result says how to
    ask), 1 adds a nudge, 2 the concept too. With ``record=True`` the outcome is saved to
    ``<state dir>/exercises.json`` for :func:`progress`.

    >>> result = await check("04.negotiate", choose)      # doctest: +SKIP
    """
    if key not in EXERCISES:
        known = ", ".join(sorted(EXERCISES))
        raise KeyError(f"no exercise {key!r}; the exercises are: {known}")
    if hint not in (0, 1, 2):
        raise ValueError(f"hint={hint!r}: use 0 (none), 1 (a nudge) or 2 (the concept)")
    ex = EXERCISES[key]
    settings = settings or get_settings()
    t0 = time.perf_counter()
    try:
        report = await ex.run(*answer, settings=settings, **services)
    except NotImplementedError:
        report = Report(hint="")
        report.require("the exercise cell is filled in", False, "NotImplementedError: still the starter")
        report.hint = "Edit the exercise cell (replace the `raise NotImplementedError`), run it, then run this check."
    except LearnerError as exc:
        report = exc.report
    result = ExerciseResult(key, ex.title, bool(report.requirements) and all(r.passed for r in report.requirements),
                            report.requirements, report.hint, time.perf_counter() - t0, ex.nudge, hint)
    if record:
        path = _progress_file(settings)
        data = _load_progress(path)
        previous = data.get(key, {})
        data[key] = {"passed": result.passed or bool(previous.get("passed")), "last": result.passed,
                     "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    return result


class LearnerError(Exception):
    """Raised inside a check when the learner's code failed; carries the report so far."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.hint)
        self.report = report


async def call_learner(report: Report, what: str, fn: Callable[..., Any], *args: Any, hint: str) -> Any:
    """Call the learner's ``fn(*args)`` (sync or async); an exception becomes a failed requirement."""
    try:
        value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's bug, shown as a finding, never a traceback
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        report.require(f"{what} runs without an error", False,
                       f"{type(exc).__name__}: {exc} (line {frame.lineno})")
        report.hint = hint
        raise LearnerError(report) from exc
    return value


@dataclass
class Progress:
    """Which exercises are done and which are still to do (from ``exercises.json``)."""

    done: list[str]
    todo: list[str]

    def __str__(self) -> str:
        return (f"{len(self.done)} of {len(self.done) + len(self.todo)} exercises done\n"
                + "".join(f"  [x] {k}  {EXERCISES[k].title}\n" for k in self.done)
                + "".join(f"  [ ] {k}  {EXERCISES[k].title}\n" for k in self.todo))

    def _repr_markdown_(self) -> str:
        lines = [f"**{len(self.done)} of {len(self.done) + len(self.todo)} exercises done**", ""]
        lines += [f"- [x] `{k}` {EXERCISES[k].title}" for k in self.done]
        lines += [f"- [ ] `{k}` {EXERCISES[k].title}" for k in self.todo]
        return "\n".join(lines)


def progress(*, settings: Settings | None = None) -> Progress:
    """The learner's progress: every exercise, done (passed at least once) or to do."""
    data = _load_progress(_progress_file(settings or get_settings()))
    done = [k for k in sorted(EXERCISES) if data.get(k, {}).get("passed")]
    return Progress(done=done, todo=[k for k in sorted(EXERCISES) if k not in done])


@dataclass
class Scratch:
    """A throwaway schema and key prefix on the real services, for one check."""

    database_url: str
    redis_url: str
    schema: str
    prefix: str


def scratch_names(key: str) -> tuple[str, str]:
    """A fresh schema name and Redis key prefix for one run of exercise ``key``."""
    tag = f"{key.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
    return f"ex_{tag}", f"ex:{tag}"


def service_urls(settings: Settings, database_url: str | None, redis_url: str | None) -> tuple[str, str]:
    """The URLs a check runs against: those given, else the settings' (embedded) services."""
    if database_url and redis_url:
        return database_url, redis_url
    from perf.services import ensure_services  # here: importing services starts nothing by itself

    handle = ensure_services(settings)
    return database_url or handle.database_url, redis_url or handle.redis_url

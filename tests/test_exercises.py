"""Every exercise check, both ways: the reference solution passes, the untouched starter fails with a hint."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from perf import exercises
from perf.config import Settings, get_settings
from perf.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
CELL = re.compile(r"^# %%.*$", re.MULTILINE)


def _notebook_source(notebook: str) -> Path:
    (path,) = (ROOT / "notebooks" / "_src").glob(f"{notebook}_*.py")
    return path


def starter(key: str) -> Any:
    """What the untouched exercise cell of ``key`` defines (exec'd from the notebook source)."""
    cells = [c.strip() for c in CELL.split(_notebook_source(EXERCISES[key].notebook).read_text())]
    (cell,) = [c for c in cells if c.startswith(f"# EXERCISE {key}")]
    namespace: dict[str, Any] = {}
    exec(compile(cell, f"<starter {key}>", "exec"), namespace)
    return namespace[EXERCISES[key].answer]


def solution(key: str) -> Any:
    """The reference answer from ``notebooks/solutions/NN_*.py``."""
    (path,) = (ROOT / "notebooks" / "solutions").glob(f"{EXERCISES[key].notebook}_*.py")
    spec = importlib.util.spec_from_file_location(f"solution_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # inspect.getsource finds a class through its module
    spec.loader.exec_module(module)
    return getattr(module, EXERCISES[key].answer)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(get_settings(), state_dir=tmp_path)


def test_every_notebook_has_two_to_four_exercises() -> None:
    per_notebook: dict[str, int] = {}
    for ex in EXERCISES.values():
        per_notebook[ex.notebook] = per_notebook.get(ex.notebook, 0) + 1
    assert set(per_notebook) >= {"01", "02", "03", "04", "05", "06", "07", "08"}
    assert all(2 <= n <= 4 for n in per_notebook.values() if n), per_notebook


@pytest.mark.parametrize("key", sorted(EXERCISES))
async def test_reference_solution_passes(key: str, settings: Settings, database_url: str, redis_url: str) -> None:
    result = await exercises.check(key, solution(key), settings=settings, database_url=database_url,
                                   redis_url=redis_url)
    assert result.passed, str(result)
    assert all(r.passed for r in result.requirements) and len(result.requirements) >= 1


@pytest.mark.parametrize("key", sorted(EXERCISES))
async def test_untouched_starter_fails_with_a_hint(key: str, settings: Settings, database_url: str,
                                                   redis_url: str) -> None:
    asked = await exercises.check(key, starter(key), hint=2, settings=settings, database_url=database_url,
                                  redis_url=redis_url)
    assert not asked.passed, str(asked)
    assert any(not r.passed for r in asked.requirements)
    assert f"hint (nudge): {asked.nudge}" in str(asked) and f"hint (concept): {asked.hint}" in str(asked)
    assert asked.nudge and asked.hint and asked.nudge != asked.hint
    # the same result as check() gives it without hint=: no hint unless asked, and the way to ask is said
    result = dataclasses.replace(asked, hint_level=0)
    assert "hint (" not in str(result) and "hint=1" in str(result) and "Hint (" not in result._repr_markdown_()


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_no_hint_contains_the_solutions_code(key: str) -> None:
    """Every line of the reference answer's code (short ones aside) is absent from both hint levels."""
    import inspect

    answer = solution(key)
    code = answer if isinstance(answer, str) else inspect.getsource(answer) if callable(answer) else repr(answer)
    lines = [line.strip() for line in code.splitlines()
             if len(line.strip()) >= 12 and not line.strip().startswith(("#", '"""', "def ", "async def "))]
    ex = EXERCISES[key]
    texts = [ex.nudge] + _concept_hints(ex.run)
    leaked = [line for line in lines for text in texts if line in text]
    assert not leaked, leaked


def _concept_hints(run: Any) -> list[str]:
    """The concept hints a check can give: the string literals of its ``Report(hint=...)`` calls."""
    import inspect

    source = inspect.getsource(run)
    return ["".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))
            for block in re.findall(r"Report\(hint=((?:\s*\"[^\n]*\"\s*)+)\)", source)]


def test_a_hint_level_outside_0_to_2_is_refused() -> None:
    with pytest.raises(ValueError, match="hint=3"):
        import asyncio

        asyncio.run(exercises.check("04.negotiate", lambda header: None, hint=3, record=False))


async def test_progress_records_done_and_to_do(settings: Settings, database_url: str, redis_url: str) -> None:
    assert exercises.progress(settings=settings).done == []
    await exercises.check("04.negotiate", solution("04.negotiate"), settings=settings)
    await exercises.check("04.negotiate", starter("04.negotiate"), settings=settings)  # a later miss keeps "done"
    done = exercises.progress(settings=settings)
    assert done.done == ["04.negotiate"]
    assert "04.negotiate" not in done.todo and len(done.todo) == len(EXERCISES) - 1
    assert "1 of" in str(done)


async def test_unknown_exercise_names_the_known_ones(settings: Settings) -> None:
    with pytest.raises(KeyError, match="08.invalidation"):
        await exercises.check("01.nope", None, settings=settings)

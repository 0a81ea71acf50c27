"""The claims ledger: verdicts a notebook publishes are recorded in its run and audited from their rounds."""

from __future__ import annotations

import json
import shutil

import pytest

from perf.measure import compare, crossover, rank
from perf.measure.verdict import add_observer, remove_observer
from perf.runs.claims import CLAIMS_FILE, audit, format_audit, record_claim
from perf.runs.cli import main
from perf.runs.store import start_run


def test_a_rule_publishes_its_verdict_once_not_the_ones_it_asks_internally() -> None:
    seen: list[str] = []
    observer = seen.append
    add_observer(observer)  # type: ignore[arg-type]
    try:
        crossover([1, 10], [[1, 1.1, 0.9]] * 2, [[2, 2.1, 1.9]] * 2)  # two compare() calls inside
        compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    finally:
        remove_observer(observer)  # type: ignore[arg-type]
    assert [v.rule for v in seen] == ["crossover", "compare"]  # type: ignore[attr-defined]


def test_audit_supports_a_recorded_verdict_and_catches_an_edited_one(capsys: pytest.CaptureFixture[str]) -> None:
    run = start_run("audit-test", kind="notebook", source="05_api", info={"cpus": 2})
    try:
        faster = compare([1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9, 2.0], a="pool", b="connect")
        path = record_claim(faster, run=run)
        record_claim(rank({"a": [1, 1.1, 0.9], "b": [3, 3.1, 2.9]}), run=run)
        assert path == run.path / "05_api" / CLAIMS_FILE
        assert all(r.supported for r in audit(run)) and "2 claims, 2 supported" in format_audit(run, audit(run))
        assert main(["audit", run.id]) == 0
        # someone "improves" a sentence by hand: the audit no longer finds it in the rounds
        claims = json.loads(path.read_text())
        claims[0]["text"] = claims[0]["text"].replace("faster", "much faster")
        claims[1]["kind"] = "ranked" if claims[1]["kind"] != "ranked" else "inconclusive"
        path.write_text(json.dumps(claims))
        results = audit(run)
        assert [r.supported for r in results] == [False, False]
        assert "rule now words it" in results[0].why and "the rule now answers" in results[1].why
        capsys.readouterr()
        assert main(["audit", run.id]) == 1
        assert "NOT SUPPORTED 05_api #1" in capsys.readouterr().out
    finally:
        shutil.rmtree(run.path)  # the session's own audit (conftest) would rightly fail on it


def test_every_rule_judges_again_in_a_process_that_imported_only_the_auditor() -> None:
    """The test session's audit runs where no notebook imported perf.measure.judgements: rank, trend,
    crossover, combine and tail must still be found (they were not, once perf.measure went lazy)."""
    import subprocess
    import sys

    code = ("from perf.measure.verdict import rederive\n"
            "v = rederive('trend', {'x': [1, 2, 3, 4], 'y': [10.0, 20.0, 30.0, 40.0], 'what': 'rss', 'unit': 'MiB'})\n"
            "print(v.kind)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rising"

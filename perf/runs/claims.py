"""The claims ledger: every verdict a notebook states, recorded in its run and audited afterwards.

Each verdict a notebook asks :mod:`perf.measure` for (``compare``, ``trend``, ``crossover``,
``rank``, ``combine``, ``tail``) is appended to ``<run>/<notebook>/claims.json``: the
sentence, the rule that judged, its answer and the inputs it judged from (the rounds
themselves). :func:`audit` judges every claim again from those inputs and lists any whose
answer or sentence no longer follows: a sentence typed by hand, a rule changed since the
run, or a claim edited after it. ``python3 tasks.py runs audit [RUN]`` prints the audit, and
the test command audits the notebooks it executed (an unsupported claim fails it).

Recording is on only where a sentence is published: in a notebook kernel, or in a process a
workbook run handed its run to. Tests and scripts that call ``compare`` record nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perf.measure.verdict import Verdict, add_observer, rederive
from perf.runs.store import RUN_ID_ENV, Run, current_run

CLAIMS_FILE = "claims.json"


def _publishing() -> bool:
    """True in a notebook kernel (an IPython shell talking to a front end) or a workbook's process.

    Not merely when ipykernel is imported: nbval imports it into the test process, where
    a thousand seeded trials would each become a claim.
    """
    if os.environ.get(RUN_ID_ENV, "").strip():
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def record_claim(verdict: Verdict, *, run: Run | None = None) -> Path:
    """Append ``verdict`` to the run's ``claims.json`` for this notebook; returns the file."""
    run = run or current_run()
    path = run.source_dir / CLAIMS_FILE
    claims = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    claims.append({"notebook": run.source, "n": len(claims) + 1, "text": verdict.text, "rule": verdict.rule,
                   "kind": verdict.kind, "estimate": verdict.estimate, "inputs": verdict.inputs})
    path.write_text(json.dumps(claims, indent=1, allow_nan=True), encoding="utf-8")
    return path


def _observe(verdict: Verdict) -> None:
    if _publishing():
        record_claim(verdict)


def install() -> None:
    """Record every published verdict from now on (idempotent; :mod:`perf.runs` calls it on import)."""
    add_observer(_observe)


@dataclass(frozen=True)
class Audit:
    """One claim judged again: ``supported`` when the rule gives the same answer and sentence."""

    notebook: str
    n: int
    text: str
    rule: str
    supported: bool
    why: str = ""


def audit_claims(claims: list[dict[str, Any]]) -> list[Audit]:
    """Judge every claim again from its recorded inputs."""
    out = []
    for claim in claims:
        notebook, n, text = str(claim.get("notebook", "?")), int(claim.get("n", 0)), str(claim.get("text", ""))
        rule = str(claim.get("rule", "?"))
        try:
            again = rederive(rule, dict(claim.get("inputs") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            out.append(Audit(notebook, n, text, rule, False, f"cannot be judged again: {exc}"))
            continue
        if again.kind != claim.get("kind"):
            why = f"the rule now answers {again.kind!r}, the claim says {claim.get('kind')!r}"
        elif again.text != text:
            why = f"the rule now words it: {again.text!r}"
        elif not _same(float(again.estimate), float(claim.get("estimate", math.nan))):
            why = f"the estimate is now {again.estimate!r}, the claim says {claim.get('estimate')!r}"
        else:
            why = ""
        out.append(Audit(notebook, n, text, rule, not why, why))
    return out


def audit(run: Run) -> list[Audit]:
    """Every claim of every notebook in ``run``, judged again (empty when the run recorded none)."""
    results: list[Audit] = []
    for path in sorted(run.path.glob(f"*/{CLAIMS_FILE}")):
        results.extend(audit_claims(json.loads(path.read_text(encoding="utf-8"))))
    return results


def format_audit(run: Run, results: list[Audit]) -> str:
    """Claim counts per notebook and every unsupported claim, for the CLI and the test command."""
    if not results:
        return f"run {run.id}: no claims recorded"
    lines = [f"run {run.id}: {len(results)} claims"]
    notebooks = sorted({r.notebook for r in results})
    for notebook in notebooks:
        mine = [r for r in results if r.notebook == notebook]
        bad = sum(not r.supported for r in mine)
        lines.append(f"  {notebook}: {len(mine)} claims, {len(mine) - bad} supported"
                     + (f", {bad} NOT SUPPORTED" if bad else ""))
    for r in results:
        if not r.supported:
            lines.append(f"  NOT SUPPORTED {r.notebook} #{r.n} ({r.rule}): {r.text}\n    {r.why}")
    return "\n".join(lines)

"""Compare two runs figure by figure, and judge a change only when it exceeds the noise.

A *figure* is one number of one row of one recorded frame: the median of a summary
frame (its noise band is the interquartile range of its repeats), or a numeric cell of
a small table (no repeats, so no band: shown, never judged). The rule is asv's
``compare``: a change counts only when the two noise bands do not overlap *and* the
ratio is beyond ``min_change`` (5% by default); pyperf's ``compare_to`` likewise prints
"not significant" rather than a ratio that the spread cannot support.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perf.runs.store import Run, current_run, list_run_dirs, open_run

TIME_UNITS = {"s", "ms", "us", "µs", "ns"}
#: Tables longer than this (timelines, sweeps) are not compared cell by cell.
MAX_TABLE_ROWS = 30
COLUMNS = ["source", "frame", "row", "figure", "unit", "a", "b", "ratio", "noise_a_pct", "noise_b_pct", "verdict"]


def _row_label(row: pd.Series, keys: list[str]) -> str:
    return " / ".join(str(row[k]) for k in keys) if keys else str(row.name)


def _row_labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """One label per row, unique: where the keys repeat (a line chart's points share their series'
    name) the k-th row of a label is ``label #k``, so two runs pair row for row, never all with all."""
    labels = [_row_label(row, keys) for _, row in frame.iterrows()]
    total, seen = Counter(labels), Counter[str]()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if total[label] == 1 else f"{label} #{seen[label]}")
    return unique


def figures(run: Run, source: str) -> pd.DataFrame:
    """Every comparable figure of ``source`` in ``run``: value, low, high, unit (low/high NaN: no repeats)."""
    rows: list[dict[str, Any]] = []
    for name, spec in run.schema(source).items():
        path = run.path / source / spec["file"]
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        keys = [k for k in spec.get("keys", []) if k in frame.columns]
        units = spec.get("units", {})
        labels = _row_labels(frame, keys)
        if spec.get("kind") == "summary":
            for label, (_, row) in zip(labels, frame.iterrows(), strict=True):
                rows.append({"source": source, "frame": name, "row": label, "figure": "median",
                             "unit": units.get("median", ""), "value": row["median"],
                             "low": row["q1"], "high": row["q3"], "n": row.get("n", math.nan)})
        elif len(frame) <= MAX_TABLE_ROWS:
            numeric = [c for c in frame.columns if c not in keys and pd.api.types.is_numeric_dtype(frame[c])]
            for label, (_, row) in zip(labels, frame.iterrows(), strict=True):
                for column in numeric:
                    rows.append({"source": source, "frame": name, "row": label, "figure": column,
                                 "unit": units.get(column, ""), "value": row[column],
                                 "low": math.nan, "high": math.nan, "n": math.nan})
    return pd.DataFrame(rows, columns=["source", "frame", "row", "figure", "unit", "value", "low", "high", "n"])


def _noise_pct(value: float, low: float, high: float) -> float:
    """Half the band as a percentage of the value (NaN when there is no band)."""
    if any(math.isnan(x) for x in (low, high)) or value == 0:
        return math.nan
    return 100.0 * (high - low) / 2.0 / abs(value)


def judge(a: float, a_low: float, a_high: float, b: float, b_low: float, b_high: float, *,
          unit: str = "", min_change: float = 0.05) -> str:
    """``"no repeats"``, ``"within noise"``, or the direction of a change the noise cannot explain.

    >>> judge(1.0, 0.95, 1.05, 2.0, 1.9, 2.1, unit="ms")
    'slower'
    >>> judge(1.0, 0.95, 1.05, 1.03, 0.98, 1.08, unit="ms")
    'within noise'
    """
    if min_change < 0:
        raise ValueError(f"min_change must be >= 0 (a fraction, 0.05 = 5%), got {min_change!r}")
    if any(math.isnan(x) for x in (a_low, a_high, b_low, b_high)):
        return "no repeats"
    if a == 0 or math.isnan(a) or math.isnan(b):
        return "not comparable"
    overlap = b_low <= a_high and a_low <= b_high
    if overlap or abs(b / a - 1.0) <= min_change:
        return "within noise"
    higher = b > a
    if unit in TIME_UNITS:
        return "slower" if higher else "faster"
    return "higher" if higher else "lower"


def compare_runs(a: Run, b: Run, *, sources: list[str] | None = None, min_change: float = 0.05) -> pd.DataFrame:
    """Per figure present in both runs: a, b, ratio b/a, each noise band (± % of value) and a verdict."""
    def sources_of(run: Run) -> set[str]:
        return {p.parent.name for p in run.path.glob("*/frames.json")}

    common = sorted(sources_of(a) & sources_of(b)) if sources is None else sources
    out = []
    for source in common:
        fa, fb = figures(a, source), figures(b, source)
        merged = fa.merge(fb, on=["source", "frame", "row", "figure"], suffixes=("_a", "_b"), validate="one_to_one")
        for _, r in merged.iterrows():
            out.append({
                "source": source, "frame": r["frame"], "row": r["row"], "figure": r["figure"], "unit": r["unit_b"],
                "a": r["value_a"], "b": r["value_b"],
                "ratio": r["value_b"] / r["value_a"] if r["value_a"] else math.nan,
                "noise_a_pct": _noise_pct(r["value_a"], r["low_a"], r["high_a"]),
                "noise_b_pct": _noise_pct(r["value_b"], r["low_b"], r["high_b"]),
                "verdict": judge(r["value_a"], r["low_a"], r["high_a"], r["value_b"], r["low_b"], r["high_b"],
                                 unit=r["unit_b"], min_change=min_change),
            })
    return pd.DataFrame(out, columns=COLUMNS)


def _band(pct: float) -> str:
    return "  n/a" if math.isnan(pct) else f"±{pct:.0f}%"


def format_comparison(table: pd.DataFrame, a: str, b: str) -> str:
    """Plain-text report of :func:`compare_runs`; changes beyond the noise are marked ``<<``."""
    if table.empty:
        return f"no figure is present in both {a} and {b}"
    lines = [f"B/A per figure, A = {a}, B = {b}; noise = ± half the IQR of the repeats",
             f"{'figure':<64} {'A':>10} {'B':>10} {'unit':<6} {'B/A':>7} {'noise A':>8} {'noise B':>8}  verdict"]
    for source, group in table.groupby("source", sort=False):
        lines.append(f"[{source}]")
        for _, r in group.iterrows():
            name = f"{r['frame']}: {r['row']}" + ("" if r["figure"] == "median" else f" {r['figure']}")
            unit = r["unit"] or ""
            mark = "  <<" if r["verdict"] in ("slower", "faster", "higher", "lower") else ""
            lines.append(f"{name[:64]:<64} {r['a']:>10.4g} {r['b']:>10.4g} {unit[:6]:<6} {r['ratio']:>6.2f}x "
                         f"{_band(r['noise_a_pct']):>8} {_band(r['noise_b_pct']):>8}  {r['verdict']}{mark}")
    changed = table["verdict"].isin(["slower", "faster", "higher", "lower"]).sum()
    judged = (~table["verdict"].isin(["no repeats", "not comparable"])).sum()
    lines.append(f"{changed} of {judged} figures with repeats changed beyond their noise; "
                 f"{len(table) - judged} shown without repeats (not judged)")
    return "\n".join(lines)


@dataclass
class RunComparison:
    """What a notebook's last cell shows: this run against the previous run of the same notebook."""

    source: str
    current: str
    previous: str | None
    table: pd.DataFrame

    def text(self) -> str:
        """The comparison as text (or why there is none)."""
        if self.previous is None:
            return (f"This is the first recorded run of {self.source} (run {self.current}): there is no "
                    "previous run to compare with yet. Run it again and this cell compares the two.")
        return format_comparison(self.table, self.previous, self.current)

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        return "```\n" + self.text() + "\n```"


def previous_run(run: Run, source: str, *, directory: Path | None = None) -> Run | None:
    """The latest run before ``run`` that recorded frames of ``source``."""
    earlier = [p for p in list_run_dirs(directory or run.path.parent) if p.name < run.id]
    for path in reversed(earlier):
        if (path / source / "frames.json").exists():
            return open_run(path.name, directory=path.parent)
    return None


def compare_with_previous(source: str, *, run: Run | None = None) -> RunComparison:
    """Compare this process's run of ``source`` (a notebook's name) with its previous run.

    Also names the run's folder for ``source`` when the notebook could not be detected.
    """
    run = run or current_run()
    run.name_source(source)
    before = previous_run(run, source)
    table = compare_runs(before, run, sources=[source]) if before else pd.DataFrame(columns=COLUMNS)
    return RunComparison(source, run.id, before.id if before else None, table)

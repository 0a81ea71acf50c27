"""``python -m perf runs``: list runs; ``runs compare A B``: B/A per figure with noise bands;
``runs audit [RUN]``: judge every claim of a run again from its recorded rounds."""

from __future__ import annotations

import argparse
import json
import sys

from perf.runs.claims import audit, format_audit
from perf.runs.compare import compare_runs, format_comparison
from perf.runs.store import list_run_dirs, open_run, runs_dir


def _list() -> int:
    dirs = list_run_dirs()
    if not dirs:
        print(f"no runs yet in {runs_dir()}: `python3 tasks.py workbook` or a notebook records one")
        return 0
    print(f"{'run id':<40} {'kind':<10} {'profile':<8} {'commit':<9} covers")
    for path in dirs:
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        git = meta.get("git") or {}
        commit = (git.get("commit") or "?")[:7] + ("+" if git.get("dirty") else "")
        covers = ", ".join([*meta.get("notebooks", []), *meta.get("benchmarks", [])]) or "-"
        print(f"{meta['id']:<40} {meta.get('kind', '?'):<10} {meta.get('profile', '?'):<8} {commit:<9} {covers}")
    print(f"\n{len(dirs)} runs in {runs_dir()}; compare two with `python3 tasks.py runs compare A B`")
    return 0


def _resolve(name: str) -> str:
    """A run id, or ``latest`` / ``previous`` for the last two runs."""
    dirs = list_run_dirs()
    aliases = {"latest": -1, "previous": -2}
    if name in aliases:
        if len(dirs) < -aliases[name]:
            raise FileNotFoundError(f"{name!r} needs at least {-aliases[name]} runs in {runs_dir()}, have {len(dirs)}")
        return dirs[aliases[name]].name
    return name


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``runs`` lists, ``runs compare A B [--min-change 0.05]`` compares, ``runs audit [RUN]`` audits."""
    parser = argparse.ArgumentParser(prog="perf runs", description=__doc__)
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("list", help="list runs, oldest first")
    cmp = sub.add_parser("compare", help="B/A per figure present in both runs, with noise bands")
    cmp.add_argument("a", help="run id (folder name under build/runs), or 'previous'")
    cmp.add_argument("b", help="run id, or 'latest'")
    cmp.add_argument("--min-change", type=float, default=0.05,
                     help="smallest relative change reported even when the bands do not overlap (default 0.05)")
    aud = sub.add_parser("audit", help="judge every claim (claims.json) of a run again; "
                                       "exit 1 if one no longer follows")
    aud.add_argument("run", nargs="?", default="latest", help="run id, or 'latest' (default)")
    args = parser.parse_args(argv)
    if args.action in (None, "list"):
        return _list()
    if args.action == "audit":
        try:
            run = open_run(_resolve(args.run))
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        results = audit(run)
        print(format_audit(run, results))
        return 0 if all(r.supported for r in results) else 1
    try:
        a, b = open_run(_resolve(args.a)), open_run(_resolve(args.b))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(compare_runs(a, b, min_change=args.min_change), a.id, b.id))
    return 0


if __name__ == "__main__":
    sys.exit(main())

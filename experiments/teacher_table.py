"""Trained teams against their teachers: for front-door runs of one task, the trained
team's share of the clairvoyant bound (serve reward / bound of the same seed, in %)
against the heuristic team and the planner, paired by seed, and the share of the
heuristic → planner gap it closes: :func:`agents.report.paired` on the
``pct_of_oracle`` column of each run's ``results.parquet`` (serve reward / oracle value,
so runs made before and after v1's score change, 2026-12-02, compare alike); the paired
table of every metric is ``experiments/compare_runs.py``.

How to run::

    python experiments/teacher_table.py docs/benchmarks/teachers_v2/*/default/
    python experiments/teacher_table.py docs/benchmarks/teachers_v1/night_shift/*/
    python experiments/teacher_table.py --references docs/benchmarks/teachers_v2 \
        docs/benchmarks/variants_v2/*/*/

``--references DIR``: a run that did not play the heuristic team or the planner takes
their rows from ``DIR/<task>/default/`` (same seeds; the heuristic team and the planner
are deterministic given the seed — where both runs played a reference, its rows must
agree seed by seed, else the script stops).

Results to expect (night_shift, 50 seeds): bc_heuristic ties the heuristic team
(−0.84 ± 1.01), bc_planner beats it (+13.38 ± 3.31) and closes the whole gap to the
planner. Prints one Markdown row per run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq

from agents.report import paired, summarise

TRAINED, REFERENCES = "ppo", ("heuristic", "planner")
METRIC = "pct_of_oracle"
"""Serve reward / the bound's on the same seed, in % (the same definition before and after
v1's score change)."""


def _with_references(rows: list[dict], references: Path | None) -> list[dict]:
    """``rows`` plus the reference runs' rows of the references ``rows`` lacks."""
    if references is None:
        return rows
    ref_dir = references / rows[0]["task"] / "default"
    ref = pq.read_table(ref_dir / "results.parquet").to_pylist()
    played = {r["policy"] for r in rows}
    for name in REFERENCES:
        mine = {r["seed"]: r[METRIC] for r in rows if r["policy"] == name}
        theirs = {r["seed"]: r[METRIC] for r in ref if r["policy"] == name}
        differ = [s for s in mine if s in theirs and abs(mine[s] - theirs[s]) > 1e-9]
        if differ:
            raise SystemExit(f"error: {name} rows differ from {ref_dir}'s on seeds {differ[:5]}: "
                             "not the same env or policy; drop --references")  # fmt: skip
    return rows + [r for r in ref if r["policy"] in REFERENCES and r["policy"] not in played]


def measure(run: Path, references: Path | None = None) -> dict:
    """One run's trained team against the heuristic team and the planner, paired by seed."""
    if not (run / "results.parquet").is_file():
        raise SystemExit(f"error: {run} has no results.parquet: not a finished front-door run")
    rows = _with_references(pq.read_table(run / "results.parquet").to_pylist(), references)
    seeds = {r["seed"] for r in rows if r["policy"] == TRAINED}
    for name in REFERENCES:
        missing = sorted(seeds - {r["seed"] for r in rows if r["policy"] == name})
        if missing:
            raise SystemExit(f"error: {name} did not play seeds {missing[:5]}")
    mean = {s["policy"]: s[METRIC] for s in summarise(rows, [TRAINED, *REFERENCES])}
    diffs = [e[METRIC] for e in paired(rows, TRAINED, REFERENCES)]
    h, q, p = mean["heuristic"], mean["planner"], mean[TRAINED]
    gap = q - h
    # Only defined where the planner leaves the heuristics a gap to close.
    closed = f"{100 * (p - h) / gap:.0f} %" if gap > 1e-9 else "n/a"
    return {"task": rows[0]["task"], "run": run.name, "seeds": len(seeds), "heuristic": h,
            "planner": q, "trained": p, "diffs": diffs, "closed": closed}  # fmt: skip


def _cell(d: dict) -> str:
    return f"{d['mean_diff']:+.2f} ± {d['ci95']:.2f} ({d['wins']}/{d['losses']})"


def row(run: Path, references: Path | None = None) -> str:
    m = measure(run, references)
    return (f"| {m['task']} | {m['run']} | {m['seeds']} | {m['heuristic']:.1f} | "
            f"{m['planner']:.1f} | {m['trained']:.1f} | {_cell(m['diffs'][0])} | "
            f"{_cell(m['diffs'][1])} | {m['closed']} |")  # fmt: skip


def _wide_cell(m: dict) -> str:
    d = m["diffs"][0]
    return f"{m['trained']:.1f} ({d['mean_diff']:+.2f} ± {d['ci95']:.2f})"


def wide(measures: list[dict]) -> str:
    """One row per task, one column per run name (in order of first appearance): the
    trained team's share of the bound and its paired difference to the heuristic team;
    "–" where a task has no run of that name."""
    names = list(dict.fromkeys(m["run"] for m in measures))
    by_task: dict[str, dict[str, dict]] = {}
    for m in measures:
        by_task.setdefault(m["task"], {})[m["run"]] = m
    head = "| task | heuristic % | planner % | " + " | ".join(f"{n} % (− heuristic)" for n in names)
    lines = [head + " |", "|---|---:|---:|" + "---:|" * len(names)]
    for task, runs in by_task.items():
        first = next(iter(runs.values()))
        cells = [_wide_cell(runs[n]) if n in runs else "–" for n in names]
        lines.append(f"| {task} | {first['heuristic']:.1f} | {first['planner']:.1f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="front-door run directories")
    ap.add_argument("--references", type=Path, default=None,
                    help="DIR/<task>/default/ supplies reference rows a run lacks")  # fmt: skip
    ap.add_argument("--wide", action="store_true", help="one row per task, a column per run name")
    args = ap.parse_args(argv)
    if args.wide:
        print(wide([measure(r, args.references) for r in args.runs]))
        return 0
    print(
        "| task | run | seeds | heuristic % | planner % | trained % | trained − heuristic "
        "(won/lost) | trained − planner (won/lost) | gap closed |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        print(row(run, args.references))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

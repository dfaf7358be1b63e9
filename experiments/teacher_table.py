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

Results to expect (night_shift, 50 seeds): bc_heuristic ties the heuristic team
(−0.84 ± 1.01), bc_planner beats it (+13.38 ± 3.31) and closes the whole gap to the
planner. Prints one Markdown row per run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq

from agents.report import paired, summarise

TRAINED, REFERENCES = "ppo", ("heuristic", "planner")
METRIC = "pct_of_oracle"
"""Serve reward / the bound's on the same seed, in % (the same definition before and after
v1's score change)."""


def row(run: Path) -> str:
    rows = pq.read_table(run / "results.parquet").to_pylist()
    seeds = {r["seed"] for r in rows if r["policy"] == TRAINED}
    for name in REFERENCES:
        missing = sorted(seeds - {r["seed"] for r in rows if r["policy"] == name})
        if missing:
            raise SystemExit(f"error: {name} did not play seeds {missing[:5]}")
    mean = {s["policy"]: s[METRIC] for s in summarise(rows, [TRAINED, *REFERENCES])}
    cells = [f"{d['mean_diff']:+.2f} ± {d['ci95']:.2f} ({d['wins']}/{d['losses']})"
             for d in (e[METRIC] for e in paired(rows, TRAINED, REFERENCES))]  # fmt: skip
    h, q, p = mean["heuristic"], mean["planner"], mean[TRAINED]
    gap = q - h
    # Only defined where the planner leaves the heuristics a gap to close.
    closed = f"{100 * (p - h) / gap:.0f} %" if gap > 1e-9 else "n/a"
    task = rows[0]["task"]
    return (f"| {task} | {run.name} | {len(seeds)} | {h:.1f} | {q:.1f} | "
            f"{p:.1f} | {cells[0]} | {cells[1]} | {closed} |")  # fmt: skip


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    print(
        "| task | run | seeds | heuristic % | planner % | trained % | trained − heuristic "
        "(won/lost) | trained − planner (won/lost) | gap closed |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for arg in argv:
        print(row(Path(arg)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

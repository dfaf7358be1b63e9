"""Trained teams against their teachers: for front-door runs of one task, the trained
team's share of the clairvoyant bound (serve reward / bound of the same seed, in %)
against the heuristic team and the planner, paired by seed, and the share of the
heuristic → planner gap it closes. Computed from each run's ``results.parquet``
(``serve_reward`` and ``oracle_value``), so runs made before and after v1's score change
(2026-12-02) compare alike.

How to run::

    python experiments/teacher_table.py docs/benchmarks/teachers_v1/night_shift/*/

Results to expect (night_shift, 50 seeds): bc_heuristic ties the heuristic team
(−0.84 ± 1.01), bc_planner beats it (+13.38 ± 3.31) and closes the whole gap to the
planner. Prints one Markdown row per run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow.parquet as pq

from agents.report import mean_ci


def shares(rows: list[dict], policy: str, seeds: list) -> np.ndarray:
    by_seed = {r["seed"]: r for r in rows if r["policy"] == policy}
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise SystemExit(f"error: {policy} did not play seeds {missing[:5]}")
    return np.array([100 * by_seed[s]["serve_reward"] / by_seed[s]["oracle_value"]
                     if by_seed[s]["oracle_value"] else 100.0 for s in seeds])  # fmt: skip


def row(run: Path) -> str:
    rows = pq.read_table(run / "results.parquet").to_pylist()
    seeds = sorted(r["seed"] for r in rows if r["policy"] == "ppo")
    p, h, q = (shares(rows, name, seeds) for name in ("ppo", "heuristic", "planner"))
    cells = []
    for other in (h, q):
        m, ci = mean_ci(list(p - other))
        cells.append(f"{m:+.2f} ± {ci:.2f} ({int((p - other > 1e-9).sum())}/"
                     f"{int((p - other < -1e-9).sum())})")  # fmt: skip
    gap = q.mean() - h.mean()
    # Only defined where the planner leaves the heuristics a gap to close.
    closed = f"{100 * (p.mean() - h.mean()) / gap:.0f} %" if gap > 1e-9 else "n/a"
    task = rows[0]["task"]
    return (f"| {task} | {run.name} | {len(seeds)} | {h.mean():.1f} | {q.mean():.1f} | "
            f"{p.mean():.1f} | {cells[0]} | {cells[1]} | {closed} |")  # fmt: skip


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

"""Does each role matter? Heuristic team vs the same team with one role replaced by
a random legal policy, vs the clairvoyant oracle, on the ``ed`` ruleset.

    python experiments/role_ablation.py --seeds 50 --out docs/benchmarks/role_ablation
    python experiments/role_ablation.py --suite --seeds 50 --out docs/benchmarks/role_ablation_v1

writes ``<out>.json`` (per-team means, standard errors, paired differences) and
``<out>.md`` (the table of docs/ed.md). ``--suite``: the v1 env (``ed_triage_v1``) on
every task, the three fixed ones and the scenario suite; each role's *cost* is the
heuristic team's serve reward minus the ablated team's, in % of the bound, paired by
seed with its 95 % t-interval.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python experiments/role_ablation.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import agents  # noqa: F401  (registers the policies)
from agents import roles as _roles  # noqa: F401
from agents.ed_evaluation import evaluate_teams
from agents.report import mean_ci, run_record, write_json, write_text
from envs.ed_triage_v1 import ED_ENVS, ED_TASKS

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
ROLE_COST_TARGET = 3.0
"""Issue 13's bar: a role at random costs at least this many % of the bound."""
TEAMS = {
    "heuristic": None,
    "random nurse": "nurse=random",
    "random pharmacist": "pharmacist=random",
    "random consultant": "consultant=random",
}


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        by_team = {t: [r for r in rows if r["task"] == task and r["team"] == t] for t in TEAMS}
        base = np.array([r["score"] for r in by_team["heuristic"]])
        base_pct = np.array([r["pct_of_oracle"] for r in by_team["heuristic"]])
        entry = {}
        for team, rs in by_team.items():
            score = np.array([r["score"] for r in rs])
            diff = score - base
            cost, cost_ci = mean_ci(base_pct - np.array([r["pct_of_oracle"] for r in rs]))
            grader = np.array([r["grader_score"] for r in rs])
            entry[team] = {
                "score_mean": float(score.mean()), "score_se": _se(score),
                "grader_score_mean": float(grader.mean()), "grader_score_se": _se(grader),
                "serve_reward_mean": float(np.mean([r["serve_reward"] for r in rs])),
                "pct_of_oracle_mean": float(np.mean([r["pct_of_oracle"] for r in rs])),
                "pct_cost_mean": cost, "pct_cost_ci95": cost_ci,
                "diff_vs_heuristic_mean": float(diff.mean()), "diff_vs_heuristic_se": _se(diff),
                "adverse_events_mean": float(np.mean([r["adverse_events"] for r in rs])),
                "under_triage_rate_mean": float(np.mean([r["under_triage_rate"] or 0.0
                                                         for r in rs])),
            }  # fmt: skip
        rs = by_team["heuristic"]
        entry["oracle"] = {
            "score_mean": float(np.mean([r["oracle_score"] for r in rs])),
            "score_se": _se(np.array([r["oracle_score"] for r in rs])),
            "grader_score_mean": float(np.mean([r["oracle_grader_score"] for r in rs])),
            "grader_score_se": _se(np.array([r["oracle_grader_score"] for r in rs])),
            "serve_reward_mean": float(np.mean([r["oracle_value"] for r in rs])),
            "pct_of_oracle_mean": 100.0,
        }
        entry["every_role_matters"] = all(
            entry[t]["score_mean"] < entry["heuristic"]["score_mean"]
            for t in TEAMS
            if t != "heuristic"
        )
        out[task] = entry
    return out


def markdown(summary: dict, seeds: int) -> str:
    lines = [
        f"Mean task score and grader ± s.e. over {seeds} seeds per task (`ed` ruleset, team "
        "reward; score: v1 the share of the bound's serve reward, v0 the grader); Δ = paired "
        "difference of the score to the heuristic team; % = serve reward as % of the oracle's.",
        "",
        "| task | team | score | Δ vs heuristic | grader | % of oracle | "
        "cost (% of oracle, 95 % CI) | adverse events | under-triage |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, entry in summary.items():
        for team in (*TEAMS, "oracle"):
            e = entry[team]
            d = (
                f"{e['diff_vs_heuristic_mean']:+.4f} ± {e['diff_vs_heuristic_se']:.4f}"
                if "diff_vs_heuristic_mean" in e and team != "heuristic"
                else ""
            )
            ae = f"{e['adverse_events_mean']:.2f}" if "adverse_events_mean" in e else "0"
            ut = f"{e['under_triage_rate_mean']:.2f}" if "under_triage_rate_mean" in e else "0"
            cost = (f"{e['pct_cost_mean']:+.1f} ± {e['pct_cost_ci95']:.1f}"
                    if "pct_cost_mean" in e and team != "heuristic" else "")  # fmt: skip
            lines.append(
                f"| {task} | {team} | {e['score_mean']:.4f} ± {e['score_se']:.4f} | {d} | "
                f"{e['grader_score_mean']:.4f} ± {e['grader_score_se']:.4f} | "
                f"{e['pct_of_oracle_mean']:.1f} | {cost} | {ae} | {ut} |"
            )  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--tasks", nargs="+", default=None, help="default: the three fixed tasks")
    ap.add_argument("--out", default="docs/benchmarks/role_ablation")
    ap.add_argument("--version", default="v0", choices=list(ED_ENVS), help="ed env version")
    ap.add_argument(
        "--suite",
        action="store_true",
        help="v1 (overrides --version), by default on every task (fixed and suite)",
    )
    args = ap.parse_args(argv)
    if args.suite:
        args.version = "v1"
    args.tasks = args.tasks or list(ED_TASKS if args.suite else TASKS)
    t0 = time.perf_counter()
    rows = []
    for task in args.tasks:
        rows += evaluate_teams(task, TEAMS, range(args.seeds), version=args.version)
    summary = summarise(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "seeds": args.seeds,
        "ruleset": "ed",
        "env": f"ed_triage_{args.version}",
        "reward_mode": "team",
        "seconds": round(time.perf_counter() - t0, 1),
        **run_record("role_ablation.py", argv),
    }
    costs = {
        team: sum(1 for e in summary.values() if e[team]["pct_cost_mean"] >= ROLE_COST_TARGET)
        for team in TEAMS if team != "heuristic"
    }  # fmt: skip
    doc = {"meta": meta, "summary": summary, f"tasks_with_cost_ge_{ROLE_COST_TARGET:g}pct": costs}
    write_json(out.with_suffix(".json"), doc)
    md = markdown(summary, args.seeds)
    md += (f"\nTasks where the role played at random costs ≥ {ROLE_COST_TARGET:g} % of the "
           "bound: " + ", ".join(f"{t}: {n}" for t, n in costs.items()) + "\n")  # fmt: skip
    write_text(out.with_suffix(".md"), md)
    print(md)
    return 0 if all(e["every_role_matters"] for e in summary.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

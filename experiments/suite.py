"""The ``ed`` v1 difficulty table: random team, role-heuristic team, rollout planner
and the clairvoyant bound on every task (the three fixed ones and the scenario suite).

    python experiments/suite.py --list                 # the suite's scenario names
    python experiments/suite.py --seeds 50 --out docs/benchmarks/suite

writes ``DIR/suite.json`` — ``rows``: per task and policy (``random``, ``heuristic``,
``planner``, ``oracle``) ``seeds``, ``pct_of_bound`` (serve reward as % of the
bound, mean of the per-seed ratios: 100 × v1's task ``score``) and ``normalised``
(per seed (R − R_random) / (R_bound − R_random), averaged), each with its 95 %
t-interval half-width (``*_ci95``); ``paired``: per task, planner − heuristic in
normalised units, paired by seed (``mean_diff``, ``ci95``) — and ``DIR/suite.md``
(the same as tables).
Seeds are ``--seed-start`` … (default 10,000: held out from training seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python experiments/suite.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import agents  # noqa: F401  (registers the policies)
from agents.ed_evaluation import RANDOM_TEAM, evaluate_teams
from agents.report import mean_ci, run_record, write_json, write_text
from envs.ed.suite import SCENARIOS
from envs.ed_triage_v1 import ED_TASKS

TEAMS = {"random": RANDOM_TEAM, "heuristic": None, "planner": "planner"}
POLICIES = (*TEAMS, "oracle")
EVAL_SEED_START = 10_000


def play(tasks, seeds: list[int], on_episode=None) -> list[dict]:
    """Per-episode rows of every team on every task (``evaluate_teams``, v1 env)."""
    rows: list[dict] = []
    for task in tasks:
        rows += evaluate_teams(task, TEAMS, seeds, version="v1", on_episode=on_episode)
    return rows


def summarise(rows: list[dict]) -> dict:
    """``{"rows": [...], "paired": [...]}`` of the module docstring."""
    out_rows, paired = [], []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        per = {p: {r["seed"]: r for r in mine if r["team"] == p} for p in TEAMS}
        per["oracle"] = {s: {**r, "pct_of_oracle": 100.0, "normalised": 1.0}
                         for s, r in per["heuristic"].items()}  # fmt: skip
        for policy in POLICIES:
            got = per[policy]
            pct, pct_ci = mean_ci([r["pct_of_oracle"] for r in got.values()])
            norm, norm_ci = mean_ci([r["normalised"] for r in got.values()])
            out_rows.append({"task": task, "policy": policy, "seeds": len(got),
                             "pct_of_bound": pct, "pct_of_bound_ci95": pct_ci,
                             "normalised": norm, "normalised_ci95": norm_ci})  # fmt: skip
        seeds = [s for s in per["planner"] if s in per["heuristic"]]
        diff = [per["planner"][s]["normalised"] - per["heuristic"][s]["normalised"] for s in seeds]
        mean, half = mean_ci(diff)
        paired.append({"task": task, "mean_diff": mean, "ci95": half})
    return {"rows": out_rows, "paired": paired}


def markdown(doc: dict) -> str:
    meta = doc["meta"]
    lines = [
        f"# ed v1 difficulty table ({meta['seeds']} seeds per task, {meta['date']})",
        "",
        f"Command: `{meta['command']}` ({meta['seconds']:.0f} s). Serve reward as % of the "
        "clairvoyant bound (exact ILP, envs.ed.bound) and normalised (R − R_random) / "
        "(R_bound − R_random), mean ± 95 % t-interval over seeds.",
        "",
        "| task | random % | heuristic % | planner % | heuristic norm. | planner norm. | "
        "planner − heuristic (norm., paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["task"], r["policy"]): r for r in doc["rows"]}
    for p in doc["paired"]:
        t = p["task"]

        def pct(policy: str, t=t) -> str:
            r = by[(t, policy)]
            return f"{r['pct_of_bound']:.1f} ± {r['pct_of_bound_ci95']:.1f}"

        def norm(policy: str, t=t) -> str:
            r = by[(t, policy)]
            return f"{r['normalised']:.3f} ± {r['normalised_ci95']:.3f}"

        lines.append(
            f"| {t} | {pct('random')} | {pct('heuristic')} | {pct('planner')} | "
            f"{norm('heuristic')} | {norm('planner')} | {p['mean_diff']:+.3f} ± {p['ci95']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the scenario names and exit")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--seed-start", type=int, default=EVAL_SEED_START)
    ap.add_argument("--tasks", nargs="+", default=list(ED_TASKS), choices=ED_TASKS)
    ap.add_argument("--out", type=Path, default=Path("runs/suite"))
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if args.seeds < 2:
        ap.error("--seeds must be at least 2 (95 % intervals need two seeds)")
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    t0 = time.perf_counter()
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                        console=console)  # fmt: skip
    with progress:
        bar = progress.add_task("suite", total=len(args.tasks) * len(TEAMS) * len(seeds), last="")

        def tick(row: dict) -> None:
            last = f"{row['task']} {row['team']} {row['pct_of_oracle']:.1f} %"
            progress.update(bar, advance=1, last=last)

        rows = play(args.tasks, seeds, tick)
    doc = summarise(rows)
    doc["meta"] = {
        "seeds": args.seeds, "seed_start": args.seed_start, "env": "ed_triage_v1",
        "seconds": round(time.perf_counter() - t0, 1),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        **run_record("suite.py", argv),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "suite.json", doc)
    md = markdown(doc)
    write_text(args.out / "suite.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

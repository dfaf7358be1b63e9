"""Throughput of the multi-agent ED (``envs.ed_triage_v0``): parallel-env steps per
second per task, with heuristic and with random (masked legal) teams, resets included.

How to run::

    python experiments/bench_ed.py                          # 40 episodes per cell
    python experiments/bench_ed.py --episodes 200 --repeats 3 --out results/bench_ed.json

A "step" is one ``parallel_env.step(actions)`` (one sub-step: all three agents act);
the policies' ``act`` and every ``reset`` (scenario, presentations, first
observations) are timed, with ``normaliser="static"`` (no ILP). Episode seeds are
distinct (``--seed`` + i), so every reset draws new presentations (and, for
``generated``, a new schedule). Cells: tasks ``basic_triage``, ``dynamic_queue``,
``mass_casualty``, ``generated`` × teams ``heuristic`` (``ed_nurse``,
``ed_pharmacist``, ``ed_consultant``) and ``random``. Each cell reports the median
steps/s over ``--repeats`` runs, episodes/s, mean steps per episode and the share of
the time spent in ``reset``.

Results to expect on a 2-core machine (shared): a few thousand steps/s (heuristic
teams ~3–4 k, random teams ~4–6 k); the issue's target is 20 k. The JSON (``--out``)
holds every figure plus the platform.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agents.base import Policy
from agents.ed_evaluation import team_context
from agents.roles import make_team
from envs import ed_triage_v0
from envs.generator import GENERATED_TASK
from experiments.report import write_json

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty", GENERATED_TASK)
TEAMS: dict[str, str | None] = {
    "heuristic": None,
    "random": "nurse=random,consultant=random,pharmacist=random",
}
TARGET_STEPS_PER_S = 20_000
DEFAULT_OUT = Path("results/bench_ed.json")


@dataclass(frozen=True)
class Run:
    steps: int
    episodes: int
    seconds: float
    reset_seconds: float


@dataclass(frozen=True)
class Cell:
    task: str
    team: str
    steps_per_s: float
    episodes_per_s: float
    steps_per_episode: float
    reset_share: float


def run_once(env, team: dict[str, Policy], episodes: int, seed: int) -> Run:
    steps = 0
    reset_s = 0.0
    t0 = time.perf_counter()
    for i in range(episodes):
        r0 = time.perf_counter()
        for p in team.values():
            p.reset(seed + i)
        obs, _ = env.reset(seed=seed + i)
        reset_s += time.perf_counter() - r0
        while env.agents:
            obs, *_ = env.step({a: team[a].act(obs[a]) for a in env.agents})
            steps += 1
    return Run(steps, episodes, time.perf_counter() - t0, reset_s)


def bench(task: str, team_name: str, episodes: int, repeats: int, seed: int) -> Cell:
    env = ed_triage_v0.parallel_env(task=task, normaliser="static")
    team = make_team(TEAMS[team_name], team_context(env), seed=seed)
    run_once(env, team, 2, seed)  # warm-up: template indexing, imports
    runs = [run_once(env, team, episodes, seed) for _ in range(repeats)]
    rates = [r.steps / r.seconds for r in runs]
    med = sorted(runs, key=lambda r: r.steps / r.seconds)[len(runs) // 2]
    return Cell(
        task=task,
        team=team_name,
        steps_per_s=round(statistics.median(rates), 1),
        episodes_per_s=round(med.episodes / med.seconds, 1),
        steps_per_episode=round(med.steps / med.episodes, 1),
        reset_share=round(med.reset_seconds / med.seconds, 3),
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=40, help="episodes per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    ap.add_argument("--seed", type=int, default=1_000, help="first episode seed")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--teams", nargs="+", default=list(TEAMS), choices=list(TEAMS))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    cells = []
    print(f"{'task':<15}{'team':<11}{'steps/s':>10}{'eps/s':>9}{'steps/ep':>10}{'reset':>8}")
    for task in args.tasks:
        for team in args.teams:
            c = bench(task, team, args.episodes, args.repeats, args.seed)
            cells.append(c)
            print(f"{c.task:<15}{c.team:<11}{c.steps_per_s:>10.0f}{c.episodes_per_s:>9.1f}"
                  f"{c.steps_per_episode:>10.1f}{c.reset_share:>8.0%}")  # fmt: skip
    result = {
        "benchmark": "ed_parallel_env_throughput",
        "normaliser": "static",
        "episodes": args.episodes,
        "repeats": args.repeats,
        "seed": args.seed,
        "target_steps_per_s": TARGET_STEPS_PER_S,
        "cells": [asdict(c) for c in cells],
        "platform": {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
        },  # fmt: skip
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()

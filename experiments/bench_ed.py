"""Throughput of the multi-agent ED (``envs.ed_triage_v0`` / ``v1`` / ``v2``): parallel-env
steps per second per version and task, with heuristic and with random (masked legal)
teams, resets included.

How to run::

    python experiments/bench_ed.py                          # 40 episodes per cell
    python experiments/bench_ed.py --clock cpu --repeats 3 --out docs/benchmarks/bench_ed.json
    python experiments/bench_ed.py --versions v1 v2 --teams random   # a subset

A "step" is one ``parallel_env.step(actions)`` (one sub-step: all three agents act);
the policies' ``act`` and every ``reset`` (scenario, presentations, first
observations) are timed, with ``normaliser="static"`` (no ILP). Episode seeds are
distinct (``--seed`` + i), so every reset draws new presentations (v2: picks them from
its bank) (and, for ``generated``, a new schedule). Cells: versions ``--versions``
(default v0, v1, v2: :data:`envs.ed.v1.ED_ENVS`) × tasks ``basic_triage``, ``dynamic_queue``,
``mass_casualty``, ``generated`` × teams ``heuristic`` (``ed_nurse``,
``ed_pharmacist``, ``ed_consultant``) and ``random``. Each cell reports the median
steps/s over ``--repeats`` runs, episodes/s, mean steps per episode, the share of
the time spent in ``reset`` (policy resets included), and the env alone:
``env_steps_per_s`` (steps / time inside ``env.reset`` + ``env.step``, policies
excluded) and ``env_share`` (that time's share of the total), and what drawing the
patients costs: ``scenario_ms`` (``build_ed_scenario`` per episode with the version's
config: the schedule plus one presentation per patient) and ``scenario_ceiling_steps_per_s`` (steps
per episode ÷ that time: no env, however fast its steps and encoders, that draws fresh
presentations every episode can beat it here). ``--clock cpu`` times with this
process's CPU time instead of wall time (steadier on a shared machine).

Results to expect: docs/benchmarks/bench_ed.md (figures, command, date). The JSON
(``--out``) holds every figure plus the platform.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.base import Policy
from agents.ed_evaluation import team_context
from agents.heuristics import RandomLegal
from agents.report import run_record, save_json
from agents.roles import make_team
from envs.ed.scenario import build_ed_scenario
from envs.ed.v1 import ED_ENVS
from envs.ed.vector_env import BATCHED_VERSIONS, EdVectorEnv
from envs.generator import GENERATED_TASK

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty", GENERATED_TASK)
TEAMS: dict[str, str | None] = {
    "heuristic": None,
    "random": "nurse=random,consultant=random,pharmacist=random",
}
TARGET_STEPS_PER_S = 20_000
BATCHED = {f"{v}-batched": v for v in BATCHED_VERSIONS}
"""Batched cells (:class:`~envs.ed.vector_env.EdVectorEnv`) → the version they batch."""
VERSIONS = (*ED_ENVS, *BATCHED)
DEFAULT_OUT = Path("results/bench_ed.json")


@dataclass(frozen=True)
class Run:
    steps: int
    episodes: float  # batched runs: steps ÷ mean episode length
    seconds: float
    reset_seconds: float
    env_seconds: float  # inside env.reset and env.step only (no policy time)


@dataclass(frozen=True)
class Cell:
    version: str
    task: str
    team: str
    steps_per_s: float
    episodes_per_s: float
    steps_per_episode: float
    reset_share: float
    env_steps_per_s: float  # steps / time inside env.reset + env.step (policies excluded)
    env_share: float  # share of the total time spent inside the env
    scenario_ms: float  # build_ed_scenario per episode (schedule + presentations)
    scenario_ceiling_steps_per_s: float  # steps/episode ÷ scenario time: the bound resets set


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def run_once(
    env, team: dict[str, Policy], episodes: int, seed: int, clock=time.perf_counter
) -> Run:
    steps = 0
    reset_s = env_s = 0.0
    t0 = clock()
    for i in range(episodes):
        r0 = clock()
        for p in team.values():
            p.reset(seed + i)
        e0 = clock()
        obs, _ = env.reset(seed=seed + i)
        e1 = clock()
        reset_s += e1 - r0
        env_s += e1 - e0
        while env.agents:
            actions = {a: team[a].act(obs[a]) for a in env.agents}
            e0 = clock()
            obs, *_ = env.step(actions)
            env_s += clock() - e0
            steps += 1
    return Run(steps, episodes, clock() - t0, reset_s, env_s)


def run_batched_once(
    env: EdVectorEnv, team: list[RandomLegal], episodes: int, seed: int, clock=time.perf_counter
) -> Run:
    """Play the batch until ``episodes`` episodes have ended; a step is one episode's
    sub-step (rows restarting in a step do not count), and the run's ``episodes`` are
    its steps ÷ the mean length of the episodes that ended (the rows still playing at
    the end hold partial ones); resets (the first and every autoreset, timed through
    ``env._load``) are in both ``reset_seconds`` and ``env_seconds``."""
    load, spent = env._load, [0.0]

    def timed_load(rows: np.ndarray, seeds: list[int | None]) -> None:
        t = clock()
        load(rows, seeds)
        spent[0] += clock() - t

    env._load = timed_load  # type: ignore[method-assign]
    try:
        steps = done = ended_steps = 0
        env_s = 0.0
        t0 = clock()
        for i, p in enumerate(team):
            p.reset(seed + i)
        obs, _ = env.reset(seed=seed)
        env_s += clock() - t0
        live = np.ones(env.num_envs, dtype=bool)
        agents = env.possible_agents
        while done < episodes:
            actions = {a: team[i].choose({"action_mask": obs[a]["action_mask"]})
                       for i, a in enumerate(agents)}  # fmt: skip
            e0 = clock()
            obs, _, term, _, info = env.step(actions)
            env_s += clock() - e0
            steps += int(np.count_nonzero(live))
            if term.any():
                done += int(np.count_nonzero(term))
                ended_steps += int(info["substeps"][term].sum())
            live = ~term
        return Run(steps, steps * done / ended_steps, clock() - t0, spent[0], env_s)
    finally:
        env._load = load  # type: ignore[method-assign]


def _cell(version: str, task: str, team_name: str, runs: list[Run], scenario_s: float) -> Cell:
    rates = [r.steps / r.seconds for r in runs]
    med = sorted(runs, key=lambda r: r.steps / r.seconds)[len(runs) // 2]
    return Cell(
        version=version,
        task=task,
        team=team_name,
        steps_per_s=round(statistics.median(rates), 1),
        episodes_per_s=round(med.episodes / med.seconds, 1),
        steps_per_episode=round(med.steps / med.episodes, 1),
        reset_share=round(med.reset_seconds / med.seconds, 3),
        env_steps_per_s=round(statistics.median(r.steps / r.env_seconds for r in runs), 1),
        env_share=round(med.env_seconds / med.seconds, 3),
        scenario_ms=round(1e3 * scenario_s, 3),
        scenario_ceiling_steps_per_s=round(med.steps / med.episodes / scenario_s, 1),
    )


def bench_versions(
    task: str,
    team_name: str,
    episodes: int,
    repeats: int,
    seed: int,
    clock: str = "wall",
    versions: tuple[str, ...] = ("v0",),
    num_envs: int = 256,
    batch_factor: int = 32,
) -> tuple[list[Cell], dict[str, dict[str, float]]]:
    """One cell per version, the versions run in turn within every repeat (so a shared
    machine's load swings hit them alike), and per version after the first the
    medians over repeats of its steps/s and episodes/s ÷ the first version's (a
    batched version also ÷ the version it batches, when that ran). Batched cells
    (random team only) play ``episodes * batch_factor`` episodes on ``num_envs`` rows."""
    tick = CLOCKS[clock]
    if team_name != "random":  # the role heuristics act one observation at a time
        versions = tuple(v for v in versions if v not in BATCHED)
    envs: dict = {}
    teams: dict = {}
    for v in versions:
        if v in BATCHED:
            envs[v] = EdVectorEnv(num_envs, task=task, version=BATCHED[v])
            teams[v] = [RandomLegal(seed=seed + i) for i in range(3)]
        else:
            envs[v] = ED_ENVS[v](task=task, normaliser="static")
            teams[v] = make_team(TEAMS[team_name], team_context(envs[v]), seed=seed)

    def play(v: str, n: int, clock=time.perf_counter) -> Run:
        if v in BATCHED:
            return run_batched_once(envs[v], teams[v], n * batch_factor, seed, clock)
        return run_once(envs[v], teams[v], n, seed, clock)

    for v in versions:
        play(v, 2)  # warm-up: template indexing, banks, imports
    runs: dict[str, list[Run]] = {v: [] for v in versions}
    draws: dict[str, list[float]] = {v: [] for v in versions}
    for _ in range(repeats):
        for v in versions:
            runs[v].append(play(v, episodes, tick))
            # What drawing each episode's patients alone costs: even a free step, policy
            # and encoder could not run faster than steps_per_episode / this.
            env, t0 = envs[v], tick()
            single = env.single if v in BATCHED else env
            for i in range(episodes):
                build_ed_scenario(single.task_for(seed + i), seed + i, single.config)
            draws[v].append((tick() - t0) / episodes)
    cells = [_cell(v, task, team_name, runs[v], statistics.median(draws[v])) for v in versions]
    first = runs[versions[0]]

    def ratio(v: str, rate: Callable[[Run], float]) -> float:
        return statistics.median(rate(r) / rate(b) for r, b in zip(runs[v], first, strict=True))

    ratios = {
        v: {
            "steps_per_s": ratio(v, lambda r: r.steps / r.seconds),
            "episodes_per_s": ratio(v, lambda r: r.episodes / r.seconds),
        }
        for v in versions[1:]
    }
    for v in versions:
        base = BATCHED.get(v)
        if base in runs:
            pairs = list(zip(runs[v], runs[base], strict=True))
            ratios[v][f"steps_per_s_vs_{base}"] = statistics.median(
                r.steps / r.seconds / (b.steps / b.seconds) for r, b in pairs
            )
            ratios[v][f"env_steps_per_s_vs_{base}"] = statistics.median(
                r.steps / r.env_seconds / (b.steps / b.env_seconds) for r, b in pairs
            )
    return cells, ratios


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=40, help="episodes per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    ap.add_argument("--seed", type=int, default=1_000, help="first episode seed")
    ap.add_argument(
        "--versions",
        nargs="+",
        default=list(VERSIONS),
        choices=list(VERSIONS),
        help="env versions; *-batched: EdVectorEnv (random team only)",
    )
    ap.add_argument("--num-envs", type=int, default=256, help="rows of a batched env")
    ap.add_argument(
        "--batch-factor",
        type=int,
        default=32,
        help="a batched run plays episodes x this many episodes",
    )
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--teams", nargs="+", default=list(TEAMS), choices=list(TEAMS))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument(
        "--clock", choices=list(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (steadier on a shared box)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    cells = []
    print(f"{'ver':<11}{'task':<15}{'team':<11}{'steps/s':>10}{'eps/s':>9}{'steps/ep':>10}{'reset':>8}"
          f"{'env steps/s':>13}{'in env':>8}{'ceiling':>9}")  # fmt: skip
    ratios = []
    for task in args.tasks:
        for team in args.teams:
            got, vs = bench_versions(task, team, args.episodes, args.repeats, args.seed,
                                     args.clock, tuple(args.versions), args.num_envs,
                                     args.batch_factor)  # fmt: skip
            cells.extend(got)
            for c in got:
                print(f"{c.version:<11}{c.task:<15}{c.team:<11}{c.steps_per_s:>10.0f}"
                      f"{c.episodes_per_s:>9.1f}{c.steps_per_episode:>10.1f}{c.reset_share:>8.0%}"
                      f"{c.env_steps_per_s:>13.0f}{c.env_share:>8.0%}"
                      f"{c.scenario_ceiling_steps_per_s:>9.0f}", flush=True)  # fmt: skip
            for v, r in vs.items():
                ratios.append({"task": task, "team": team, "version": v,
                               "vs": args.versions[0], **r})  # fmt: skip
                extra = "".join(f"  {k} {x:.2f}x" for k, x in r.items() if "_vs_" in k)
                print(
                    f"     {v} ÷ {args.versions[0]}: steps/s {r['steps_per_s']:.2f}x  "
                    f"episodes/s {r['episodes_per_s']:.2f}x{extra}",
                    flush=True,
                )
    result = {
        "benchmark": "ed_parallel_env_throughput",
        **run_record("bench_ed.py", argv),
        "normaliser": "static",
        "episodes": args.episodes,
        "repeats": args.repeats,
        "seed": args.seed,
        "clock": args.clock,
        "target_steps_per_s": TARGET_STEPS_PER_S,
        "num_envs": args.num_envs,
        "batch_factor": args.batch_factor,
        "cells": [asdict(c) for c in cells],
        "ratios": ratios,
    }
    save_json(args.out, result)
    return result


if __name__ == "__main__":
    main()

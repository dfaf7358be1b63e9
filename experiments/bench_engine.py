"""Engine throughput: steps per second on every task, severity-greedy and random legal
play, with the state or observation built every step.

How to run::

    python experiments/bench_engine.py                      # ours only
    python experiments/bench_engine.py --original /path/to/queue-doctor   # + the original

Paths measured (a "step" is one env step of one episode; the policy's time counts):

* ``original``: Queue Doctor's ``QueueEngine.serve_patient``/``wait`` + ``get_state()``
  every step, the policy reading the state dict (only with ``--original``);
* ``tool_state``: our engine with the same work (``envs.dynamics`` + ``queue_state``
  dict every step), the baseline measured in every run;
* ``gym``: ``gym.make("edmarl/…-v0")`` (the ids are registered without Gymnasium's
  PassiveEnvChecker / OrderEnforcing: the env checks call order itself) + ``Policy.act``
  on the numeric observation;
* ``gym_vector``: ``gym.make_vec(…, num_envs=--num-envs)`` (native batched env) +
  ``Policy.act_vec``.

* ``original_env`` / ``gym_env`` (only with ``--original``): the engines alone, no
  policy: the same recorded actions (the policy's, played once beforehand on our env)
  replayed through Queue Doctor's engine (``serve_patient``/``wait``, state built every
  step) and through ``gym.make``; both engines are bit-exact, so both play the same
  episodes.

Every repeat runs every path once, in turn, so that a shared machine's load swings hit
them alike; each figure is the median over ``--repeats``, each ratio the median of the
per-repeat ratios. ``--clock cpu`` times with this process's CPU time (steadier on a
shared machine). Results to expect: see docs/benchmarks/bench_engine.md. The JSON
(``--out``) holds every figure and the ratios against ``tool_state`` and, when
measured, ``original`` (``gym_env_vs_original_env`` for the engines alone), each with
its lowest and highest per-repeat value (``…_range``), and every repeat's rates
(``per_repeat``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
from agents import make_policy
from agents.report import run_record, save_json
from envs import dynamics
from envs.scenario import build_scenario
from envs.tasks import get_task
from envs.tool_api import queue_state

POLICIES = ("severity_greedy", "random")


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def _interleaved(
    runs: dict[str, Callable[[], int]], repeats: int, clock: Callable[[], float]
) -> list[dict[str, float]]:
    """Steps/s of every path per repeat, the paths run in turn within each repeat."""
    out = []
    for _ in range(repeats):
        rates = {}
        for name, fn in runs.items():
            t0 = clock()
            n = fn()
            rates[name] = n / (clock() - t0)
        out.append(rates)
    return out


def _choose(queue: list[dict], policy: str, rng: random.Random) -> dict | None:
    """The patient to serve from a Queue Doctor queue view (None: wait), drawn the same
    way for both engines so that they play the same episodes."""
    ok = [p for p in queue if p["can_serve_now"]]
    if policy == "random":
        pick = rng.randrange(len(ok) + 1)
        return ok[pick] if pick < len(ok) else None
    return min(ok, key=lambda d: (d["severity"], -d["wait_time"])) if ok else None


def bench_tool_state(task: str, policy: str, steps: int) -> int:
    spec = get_task(task)
    rng = random.Random(0)
    done_steps, ep = 0, 0
    while done_steps < steps:
        state = dynamics.initial_state(build_scenario(spec, ep))
        ep += 1
        q = queue_state(state)
        while not state.done:
            p = _choose(q["queue"], policy, rng)
            if p is None:
                dynamics.wait(state)
            else:
                slot = next(
                    x.slot for x in state.scenario.patients if x.patient_id == p["patient_id"]
                )
                dynamics.serve(state, slot)
            q = queue_state(state)
            done_steps += 1
    return done_steps


def bench_original(qd, task: str, policy: str, steps: int) -> int:
    tasks, engine_cls = qd
    cfg = tasks[get_task(task).alias]
    rng = random.Random(0)
    done_steps, ep = 0, 0
    while done_steps < steps:
        eng = engine_cls(cfg, seed=ep)
        ep += 1
        st = eng.get_state()
        while eng.step < eng.max_steps:
            p = _choose(st["queue"], policy, rng)
            if p is None:
                _, st, _ = eng.wait()
            else:
                _, st, _ = eng.serve_patient(p["patient_id"])
            done_steps += 1
    return done_steps


def bench_gym(env_id: str, policy: str, steps: int) -> int:
    env = gym.make(env_id)
    pol = make_policy(policy, seed=0) if policy == "random" else make_policy(policy)
    obs, _ = env.reset(seed=0)
    ep = 0
    for _ in range(steps):
        obs, _, done, _, _ = env.step(pol.act(obs))
        if done:
            ep += 1
            obs, _ = env.reset(seed=ep)
    return steps


def bench_vector(env_id: str, policy: str, steps: int, num_envs: int) -> int:
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    pol = make_policy(policy, seed=0) if policy == "random" else make_policy(policy)
    obs, _ = venv.reset(seed=0)
    iters = max(1, steps // num_envs)
    for _ in range(iters):
        obs, *_ = venv.step(pol.act_vec(obs))
    return iters * num_envs


Episodes = list[tuple[int, list[int], list[str]]]
"""(episode seed, actions, patient ids by slot) per recorded episode."""


def record_actions(env_id: str, policy: str, steps: int) -> Episodes:
    """The policy's actions on our env, whole episodes, at least ``steps`` in all."""
    env = gym.make(env_id)
    pol = make_policy(policy, seed=0) if policy == "random" else make_policy(policy)
    episodes: Episodes = []
    total = 0
    while total < steps:
        seed = len(episodes)
        obs, _ = env.reset(seed=seed)
        ids = [p.patient_id for p in env.unwrapped.state.scenario.patients]
        acts, done = [], False
        while not done:
            a = pol.act(obs)
            acts.append(a)
            obs, _, done, _, _ = env.step(a)
        episodes.append((seed, acts, ids))
        total += len(acts)
    return episodes


def replay_original(qd, task: str, episodes: Episodes) -> int:
    tasks, engine_cls = qd
    cfg = tasks[get_task(task).alias]
    wait_action = get_task(task).num_patients
    for seed, acts, ids in episodes:
        eng = engine_cls(cfg, seed=seed)
        eng.get_state()
        for a in acts:
            if a == wait_action:
                eng.wait()
            else:
                eng.serve_patient(ids[a])
    return sum(len(e[1]) for e in episodes)


def replay_gym(env_id: str, episodes: Episodes) -> int:
    env = gym.make(env_id)
    for seed, acts, _ in episodes:
        env.reset(seed=seed)
        for a in acts:
            env.step(a)
    return sum(len(e[1]) for e in episodes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, default=None, help="queue-doctor checkout")
    ap.add_argument("--steps", type=int, default=30_000, help="steps per single-env measurement")
    ap.add_argument("--vector-steps", type=int, default=1_000_000)
    ap.add_argument("--num-envs", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--clock", choices=list(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (steadier on a shared box)",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("results/bench_engine.json"))
    args = ap.parse_args(argv)
    qd = None
    if args.original is not None:
        from experiments.crosscheck_queue_doctor import load_original

        tasks, engine_cls, _ = load_original(args.original)
        qd = (tasks, engine_cls)
    results = []
    for env_id, task in envs.GYM_IDS.items():
        for policy in POLICIES:
            row: dict = {"task": task, "policy": policy}
            runs = {
                "tool_state": partial(bench_tool_state, task, policy, args.steps),
                "gym": partial(bench_gym, env_id, policy, args.steps),
                "gym_vector": partial(
                    bench_vector, env_id, policy, args.vector_steps, args.num_envs
                ),
            }
            if qd is not None:
                played = record_actions(env_id, policy, args.steps)
                runs = {
                    "original": partial(bench_original, qd, task, policy, args.steps),
                    **runs,
                    "original_env": partial(replay_original, qd, task, played),
                    "gym_env": partial(replay_gym, env_id, played),
                }
            per_repeat = _interleaved(runs, args.repeats, CLOCKS[args.clock])
            for name in runs:
                row[name] = statistics.median(r[name] for r in per_repeat)
            pairs = [("gym", "tool_state"), ("gym_vector", "tool_state")]
            if qd is not None:
                pairs += [("gym", "original"), ("gym_vector", "original")]
                pairs += [("gym_env", "original_env")]
            for a, b in pairs:
                ratios = [r[a] / r[b] for r in per_repeat]
                row[f"{a}_vs_{b}"] = statistics.median(ratios)
                row[f"{a}_vs_{b}_range"] = [min(ratios), max(ratios)]
            row["per_repeat"] = per_repeat
            results.append(row)
            print(
                f"{task:<14} {policy:<16} "
                + "  ".join(f"{k} {v:,.0f}/s" for k, v in row.items() if k in runs)  # fmt: skip
                + "".join(
                    f"  {k} {v:.2f}x" for k, v in row.items() if "_vs_" in k and "range" not in k
                ),
                flush=True,
            )
    doc = {
        **run_record("bench_engine.py", argv),
        "num_envs": args.num_envs,
        "clock": args.clock,
        "repeats": args.repeats,
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "results": results,
    }
    save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

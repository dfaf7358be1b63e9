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
* ``gym``: ``gym.make("edmarl/…-v0")`` (with Gymnasium's wrappers) + ``Policy.act`` on
  the numeric observation;
* ``gym_vector``: ``gym.make_vec(…, num_envs=--num-envs)`` (native batched env) +
  ``Policy.act_vec``.

Results to expect on a 2-core machine: ``gym`` 0.7–1.4× ``tool_state`` and 0.5–1×
``original``; ``gym_vector`` one to two orders of magnitude above both. The JSON
(``--out``) holds every figure and the ratios against ``tool_state`` and, when
measured, ``original``.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
from agents import make_policy
from agents.report import write_json
from envs import dynamics
from envs.scenario import build_scenario
from envs.tasks import get_task
from envs.tool_api import queue_state

POLICIES = ("severity_greedy", "random")


def _time(fn: Callable[[], int], repeats: int) -> float:
    """Median steps/s of ``repeats`` runs of ``fn`` (which returns its step count)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_tool_state(task: str, policy: str, steps: int) -> int:
    spec = get_task(task)
    rng = random.Random(0)
    done_steps, ep = 0, 0
    while done_steps < steps:
        state = dynamics.initial_state(build_scenario(spec, ep))
        ep += 1
        q = queue_state(state)
        while not state.done:
            ok = [p for p in q["queue"] if p["can_serve_now"]]
            if policy == "random":
                pick = rng.randrange(len(ok) + 1)
                p = ok[pick] if pick < len(ok) else None
            else:
                p = min(ok, key=lambda d: (d["severity"], -d["wait_time"])) if ok else None
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
            ok = [p for p in st["queue"] if p["can_serve_now"]]
            if policy == "random":
                pick = rng.randrange(len(ok) + 1)
                p = ok[pick] if pick < len(ok) else None
            else:
                p = min(ok, key=lambda d: (d["severity"], -d["wait_time"])) if ok else None
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, default=None, help="queue-doctor checkout")
    ap.add_argument("--steps", type=int, default=30_000, help="steps per single-env measurement")
    ap.add_argument("--vector-steps", type=int, default=1_000_000)
    ap.add_argument("--num-envs", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
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
                runs = {"original": partial(bench_original, qd, task, policy, args.steps), **runs}
            for name, fn in runs.items():
                row[name] = _time(fn, args.repeats)
            for base in ("original", "tool_state"):
                if base in row:
                    row[f"gym_vs_{base}"] = row["gym"] / row[base]
                    row[f"gym_vector_vs_{base}"] = row["gym_vector"] / row[base]
            results.append(row)
            print(
                f"{task:<14} {policy:<16} "
                + "  ".join(
                    f"{k} {v:,.0f}/s"
                    for k, v in row.items()
                    if k in ("original", "tool_state", "gym", "gym_vector")
                )  # fmt: skip
                + "".join(f"  {k} {v:.2f}x" for k, v in row.items() if "_vs_" in k),
                flush=True,
            )
    doc = {
        "command": "python experiments/bench_engine.py " + " ".join(argv or sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },  # fmt: skip
        "num_envs": args.num_envs,
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "results": results,
    }
    write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

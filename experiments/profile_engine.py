"""Profile of the single classic Gymnasium env's hot path (``gym.make`` + the policy),
per task and policy: where the time of ``experiments/bench_engine.py``'s ``gym`` path
goes.

How to run::

    python experiments/profile_engine.py --out docs/benchmarks/profile_engine_after.json
    python experiments/profile_engine.py --tasks basic_triage --policies random --top 30

Every (task, policy) pair plays ``--steps`` steps exactly as ``bench_engine.bench_gym``
does (a fresh ``gym.make`` env, ``reset(seed=episode)`` for episodes 0, 1, …, the
policy choosing every action), first without the profiler (``steps_per_s``, this
process's CPU time, the best of ``--repeats``), then once under :mod:`cProfile`. The
JSON keeps, per pair:

* ``phases``: an unprofiled split of a step's CPU time in µs (best of ``--repeats``
  each): ``reset`` (the same resets, seeds 0, 1, … on a fresh env, per step),
  ``policy`` (``act`` on the same observations, recorded beforehand) and ``env_step``
  (the rest: ``env.step`` and the loop);
* ``top``: the ``--top`` functions by own time (``tottime``) with their call counts
  and own / cumulative time per env step in µs. cProfile's per-call overhead inflates
  Python-level functions far more than C calls (a NumPy call is one cheap entry), so
  compare the rows of one profile with each other, and read speed from
  ``steps_per_s`` and ``phases``, not from the profiled times.

Results to expect (docs/benchmarks/profile_engine_before.json and _after.json, this
2-core shared machine; see docs/benchmarks/bench_engine.md): ``env_step`` is the
largest phase everywhere (the engine's ``serve`` / ``wait``, the encoder's two row
copies and a served slot's zeroing), then ``reset`` on the short basic_triage episodes
(10 steps: seeding ``random.Random`` and starting the state and encoder are a tenth of
an episode each step) and the policy; after the speed-up the policy phase is about
1 µs per step for both heuristics.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym

import envs
from agents import make_policy
from agents.report import run_record, save_json
from experiments.bench_engine import POLICIES, bench_gym

TASK_IDS = {task: env_id for env_id, task in envs.GYM_IDS.items()}


def _rate(env_id: str, policy: str, steps: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.process_time()
        n = bench_gym(env_id, policy, steps)
        best = max(best, n / (time.process_time() - t0))
    return best


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def phases(env_id: str, policy: str, steps: int, repeats: int) -> dict[str, float]:
    """Unprofiled µs per step of ``bench_gym``'s resets, policy calls and the rest."""
    env = gym.make(env_id)
    pol = make_policy(policy, seed=0) if policy == "random" else make_policy(policy)
    observations, episodes = [], 1
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        observations.append(obs)
        obs, _, done, _, _ = env.step(pol.act(obs))
        if done:
            obs, _ = env.reset(seed=episodes)
            episodes += 1

    def resets() -> None:
        fresh = gym.make(env_id)
        for seed in range(episodes):
            fresh.reset(seed=seed)

    def acts() -> None:
        p = make_policy(policy, seed=0) if policy == "random" else make_policy(policy)
        for o in observations:
            p.act(o)

    total = _best_time(lambda: bench_gym(env_id, policy, steps), repeats)
    reset, act = _best_time(resets, repeats), _best_time(acts, repeats)
    per_step = 1e6 / steps
    return {
        "total": total * per_step,
        "reset": reset * per_step,
        "policy": act * per_step,
        "env_step": (total - reset - act) * per_step,
    }


def _short(func: tuple[str, int, str]) -> str:
    """``path:line(name)`` with the path relative to the repository when inside it."""
    path, line, name = func
    root = str(Path(__file__).resolve().parents[1]) + "/"
    if path.startswith(root):
        path = path[len(root) :]
    return f"{path}:{line}({name})" if line else name


def profile_pair(env_id: str, policy: str, steps: int, top: int) -> list[dict]:
    prof = cProfile.Profile()
    prof.runcall(bench_gym, env_id, policy, steps)
    stats = pstats.Stats(prof)
    rows = []
    for func, (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": _short(func),
                "calls": ncalls,
                "tottime_us_per_step": 1e6 * tottime / steps,
                "cumtime_us_per_step": 1e6 * cumtime / steps,
            }
        )
    rows.sort(key=lambda r: r["tottime_us_per_step"], reverse=True)
    return rows[:top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASK_IDS), choices=list(TASK_IDS))
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument("--steps", type=int, default=20_000, help="env steps per pair")
    ap.add_argument("--repeats", type=int, default=3, help="unprofiled runs (best kept)")
    ap.add_argument("--top", type=int, default=20, help="functions kept per pair")
    ap.add_argument("--out", type=Path, default=Path("results/profile_engine.json"))
    args = ap.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.top < 1:
        ap.error("--steps, --repeats and --top must be positive")
    results = []
    for task in args.tasks:
        for policy in args.policies:
            env_id = TASK_IDS[task]
            rate = _rate(env_id, policy, args.steps, args.repeats)
            split = phases(env_id, policy, args.steps, args.repeats)
            top = profile_pair(env_id, policy, args.steps, args.top)
            results.append(
                {"task": task, "policy": policy, "steps_per_s": rate, "phases": split, "top": top}
            )
            print(
                f"{task:<14} {policy:<16} {rate:>9,.0f} steps/s (unprofiled); µs/step: "
                + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
            )
            for r in top[:8]:
                print(
                    f"    {r['tottime_us_per_step']:6.2f} µs/step own  "
                    f"{r['cumtime_us_per_step']:6.2f} cum  {r['calls']:>7}  {r['function']}"
                )
    doc = {
        **run_record("profile_engine.py", argv),
        "steps": args.steps,
        "repeats": args.repeats,
        "clock": "cpu",
        "gymnasium": gym.__version__,
        "results": results,
    }
    save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

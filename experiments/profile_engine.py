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
JSON keeps, per pair, the unprofiled rate and the ``--top`` functions by own time
(``tottime``) with their call counts and own / cumulative time per env step in µs
(profiled: cProfile's per-call overhead inflates small functions, so compare the rows
with each other, not with ``steps_per_s``).

Results to expect (docs/benchmarks/profile_engine_before.json and _after.json, this
2-core shared machine): before the speed-up, basic_triage's steps are dominated by
per-episode work (``reset``: seeding ``random.Random``, building the state and the
encoder; the grader at the end) and by the policy (NumPy calls on 7-entry arrays);
after it, by the engine's ``serve`` / ``wait`` and the env's ``step`` itself.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import gymnasium as gym

import envs
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
            top = profile_pair(env_id, policy, args.steps, args.top)
            results.append({"task": task, "policy": policy, "steps_per_s": rate, "top": top})
            print(f"{task:<14} {policy:<16} {rate:>9,.0f} steps/s (unprofiled)")
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

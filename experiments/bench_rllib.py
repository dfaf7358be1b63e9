"""RLlib throughput: sampled and trained env steps per second for 0, 1 and 2 EnvRunners,
and the share of sampling time spent inside the env.

How to run::

    python experiments/bench_rllib.py                       # runners 0 1 2, mass_casualty
    python experiments/bench_rllib.py --runners 1 4 8 15    # on a bigger machine

For each runner count it builds PPO with the slot scorer, trains one warm-up
iteration, then times ``--iters`` iterations: sampled steps/s = env steps sampled /
wall time; trained steps/s = env steps of the train batches / learner update time
(all SGD epochs over each batch); env share =
(mean ``env.step`` time × number of vector-env steps) / sampling time.

Results to expect on a 2-core machine: 0 runners (sampling in the driver) and 1
runner close to each other; 2 runners no faster, since the learner and two runners
share two cores. The ratios against 0 runners are in the JSON.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.rllib.training import TrainSettings, build_config, init_ray, register_envs
from experiments.report import write_json


@dataclass
class BenchConfig:
    """RLlib sampling/training throughput by EnvRunner count."""

    task: str = "mass_casualty"
    """Task to train on."""
    runners: tuple[int, ...] = (0, 1, 2)
    """EnvRunner counts to measure."""
    envs_per_runner: int = 8
    """Envs per EnvRunner."""
    iters: int = 3
    """Timed iterations per runner count (after one warm-up iteration)."""
    train_batch_size: int = 2000
    """Env steps per iteration."""
    out: Path = Path("results/bench_rllib.json")
    """JSON output."""


def measure(cfg: BenchConfig, runners: int) -> dict:
    s = TrainSettings(task=cfg.task, num_env_runners=runners, envs_per_runner=cfg.envs_per_runner,
                      train_batch_size=cfg.train_batch_size)  # fmt: skip
    algo = build_config(s).build_algo()
    try:
        algo.train()  # warm-up: actor start, first weight sync
        sampled = trained = 0.0
        sample_t = learn_t = env_t = 0.0
        t0 = time.perf_counter()
        for _ in range(cfg.iters):
            r = algo.train()
            er = r["env_runners"]
            n = er["num_env_steps_sampled"]
            sampled += n
            trained += n  # the batch the learner digests (all epochs) in learner_update_timer
            sample_t += r["timers"]["env_runner_sampling_timer"]
            learn_t += r["timers"]["learner_update_timer"]
            env_t += er["env_step_timer"] * n / cfg.envs_per_runner
        wall = time.perf_counter() - t0
    finally:
        algo.stop()
    return {
        "num_env_runners": runners,
        "sampled_steps_per_s": sampled / wall,
        "trained_steps_per_s": trained / learn_t,
        "env_share_of_sampling": env_t / sample_t,
        "sampling_share_of_wall": sample_t / wall,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(BenchConfig, args=argv)
    init_ray(None)
    register_envs()
    rows = []
    for n in cfg.runners:
        row = measure(cfg, n)
        rows.append(row)
        print(f"runners {n}: sampled {row['sampled_steps_per_s']:,.0f}/s  trained "
              f"{row['trained_steps_per_s']:,.0f}/s  env share {row['env_share_of_sampling']:.0%}",
              flush=True)  # fmt: skip
    base = rows[0]["sampled_steps_per_s"]
    for row in rows:
        row["sampled_vs_first"] = row["sampled_steps_per_s"] / base
    doc = {"command": "python experiments/bench_rllib.py " + " ".join(argv or sys.argv[1:]),
           "task": cfg.task, "envs_per_runner": cfg.envs_per_runner,
           "train_batch_size": cfg.train_batch_size, "results": rows}  # fmt: skip
    write_json(cfg.out, doc)
    print(f"wrote {cfg.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

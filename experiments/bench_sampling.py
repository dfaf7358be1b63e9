"""One EnvRunner's sampling cost per env step, in this process, for several envs per
runner (and RLlib's multinomial action draw against ours), the variants alternated so
that the machine's drift reaches all of them alike.

How to run::

    python experiments/bench_sampling.py                       # ed, mass_casualty: 8 16 32 envs
    python experiments/bench_sampling.py --envs 8 16 --draws    # also torch's multinomial draw
    python experiments/bench_sampling.py --ruleset classic --envs 4 8 16

Each variant is a ``LeanMultiAgentEnvRunner`` (``SingleAgentEnvRunner`` on classic) built
from run.py's settings with no remote runners, so its ``sample()`` runs here on one
torch thread: env steps with hints, the role modules' forward passes, RLlib's connectors
and episode bookkeeping — a runner's whole job, without Ray transfers or the learner.
After a warm-up call each variant samples ``--steps`` env steps ``--reps`` times, in turn.

Figures: per variant the median seconds per 1,000 env steps and its ratio to the first
variant (< 1: cheaper), with every repetition in the JSON. Results to expect on a 2-core
machine (docs/benchmarks/bench_rllib.md): 16 envs ~0.8× and 32 envs ~0.7× of 8 envs'
time per step on mass_casualty: the modules' forward pass and the connectors cost per
vector step, shared by more envs.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.report import run_record, save_json


@dataclass(frozen=True)
class SamplingBench:
    """One runner's sampling time per env step, variants alternated."""

    task: str = "mass_casualty"
    """Task sampled."""
    ruleset: Literal["ed", "classic"] = "ed"
    """ed: run.py's role modules with hints; classic: the single-agent env."""
    envs: tuple[int, ...] = (8, 16, 32)
    """Envs per runner compared (the first is the baseline of the ratios)."""
    draws: bool = False
    """Also sample the first envs count with torch's ``multinomial`` action draw (RLlib's)
    instead of the modules' Gumbel-max draw."""
    steps: int = 2000
    """Env steps per timed ``sample()`` call."""
    reps: int = 5
    """Timed calls per variant."""
    out: Path = Path("results/bench_sampling.json")
    """JSON output."""


def _runner(cfg: SamplingBench, envs: int) -> Any:
    from dataclasses import replace

    from agents.rllib.training import build_config
    from experiments.run import RunConfig

    run = RunConfig(task=cfg.task, ruleset=cfg.ruleset, num_env_runners=0, envs_per_runner=envs)
    config = build_config(replace(run.validate().train_settings(), num_env_runners=0))
    if config.env_runner_cls is not None:  # the ed team's LeanMultiAgentEnvRunner
        return config.env_runner_cls(config=config)
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    return SingleAgentEnvRunner(config=config)


def main(argv: list[str] | None = None) -> int:
    import torch

    from agents.rllib import modules
    from agents.rllib.training import register_envs

    cfg = tyro.cli(SamplingBench, args=argv)
    if not cfg.envs or min(cfg.envs) < 1 or cfg.steps < 1 or cfg.reps < 1:
        raise SystemExit("--envs (each >= 1), --steps and --reps must be positive")
    torch.set_num_threads(1)  # as in a runner actor on a 2-core machine
    register_envs()
    ours = modules._LogSoftmaxCategorical.sample
    draws = {"gumbel": ours, "multinomial": torch.distributions.Categorical.sample}
    runners = {n: _runner(cfg, n) for n in cfg.envs}
    variants = [(f"{n} envs", n, "gumbel") for n in cfg.envs]
    if cfg.draws:
        variants.append((f"{cfg.envs[0]} envs, multinomial draw", cfg.envs[0], "multinomial"))
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    try:
        for r in runners.values():
            r.sample(num_timesteps=cfg.steps // 4 + 1)  # warm-up: first calls, resets
        for rep in range(cfg.reps):
            for name, n, draw in variants:
                modules._LogSoftmaxCategorical.sample = draws[draw]
                t = time.perf_counter()
                runners[n].sample(num_timesteps=cfg.steps)
                times[name].append((time.perf_counter() - t) * 1000 / cfg.steps)
            last = "  ".join(f"{k} {v[-1]:.3f}" for k, v in times.items())
            print(f"rep {rep + 1}/{cfg.reps}: {last} s per 1,000 steps", flush=True)
    finally:
        modules._LogSoftmaxCategorical.sample = ours
        for r in runners.values():
            r.stop()
    base = statistics.median(times[variants[0][0]])
    rows = []
    for name, n, draw in variants:
        med = statistics.median(times[name])
        rows.append({"variant": name, "envs_per_runner": n, "draw": draw, "median": med,
                     "vs_first": med / base, "s_per_1000_steps": times[name]})  # fmt: skip
        print(f"{name}: median {med:.3f} s per 1,000 env steps ({med / base:.2f}× the first)")
    doc = {**run_record("bench_sampling.py", argv), "date": time.strftime("%Y-%m-%d"),
           "task": cfg.task, "ruleset": cfg.ruleset, "steps": cfg.steps, "reps": cfg.reps,
           "results": rows}  # fmt: skip
    save_json(cfg.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ray Tune sweep of PPO hyperparameters for the slot-scorer consultant.

How to run::

    python experiments/sweep.py --task mass_casualty                 # 8 trials, ASHA
    python experiments/sweep.py --task dynamic_queue --num-samples 16 --max-iters 40
    python experiments/run.py --config runs/sweeps/<name>/best_config.json   # use the winner

Searches learning rate, entropy bonus, clip range, train batch and minibatch sizes
and the model width, with ASHA early stopping on the mean training episode return;
with ``optuna`` installed the search is Optuna's TPE (``--search random`` forces random
sampling). Results are in Tune's standard layout under ``--storage/--name`` (one
directory per trial with ``result.json`` / ``progress.csv``), and the best trial's
settings are written as ``best_config.json`` there, in ``experiments/run.py``'s field
names, so ``run.py --config`` trains with them.

Results to expect (defaults, 2-core machine, about 5–10 minutes): 8 trials, most
stopped early by ASHA; the best reaches a mean training return close to the
heuristics' (mass_casualty ≈ 12.5–12.9).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.rllib.training import TrainSettings, build_config, init_ray, register_envs
from experiments.report import write_json

METRIC = "env_runners/episode_return_mean"
SEARCHES = ("auto", "optuna", "random")


@dataclass
class SweepConfig:
    """A Tune sweep of PPO hyperparameters on one task."""

    task: str = "mass_casualty"
    """Task to train on (training seeds only)."""
    ruleset: str = "classic"
    """Engine ruleset."""
    num_samples: int = 8
    """Trials to run."""
    max_iters: int = 20
    """Training iterations of a trial that ASHA never stops."""
    grace_period: int = 4
    """Iterations every trial gets before ASHA may stop it."""
    search: str = "auto"
    """auto (Optuna if installed, else random), optuna, or random."""
    max_concurrent: int = 1
    """Trials running at once (1 suits a 2-core machine)."""
    storage: Path = Path("runs/sweeps")
    """Tune storage directory (absolute or relative to the working directory)."""
    name: str = "ppo_sweep"
    """Experiment name: results go to <storage>/<name>."""
    seed: int = 0
    """Seed of the search algorithm and of every trial."""
    address: str | None = None
    """Ray cluster address (default: RAY_ADDRESS, else local)."""


def search_space() -> dict:
    from ray import tune

    return {
        "lr": tune.loguniform(1e-4, 3e-3),
        "entropy_coeff": tune.uniform(0.0, 0.03),
        "clip_param": tune.uniform(0.1, 0.3),
        "train_batch_size_per_learner": tune.choice([1000, 2000, 4000]),
        "minibatch_size": tune.choice([128, 256]),
        "width": tune.choice([32, 64, 128]),
    }


def _search_alg(cfg: SweepConfig):
    if cfg.search not in SEARCHES:
        raise ValueError(f"--search must be one of {SEARCHES}")
    if cfg.search == "random":
        return None
    try:
        import optuna  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        if cfg.search == "optuna":
            raise ValueError("--search optuna needs `pip install optuna`") from None
        return None
    return OptunaSearch(metric=METRIC, mode="max", seed=cfg.seed)


def sweep(cfg: SweepConfig) -> dict:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    space = search_space()
    base = build_config(TrainSettings(task=cfg.task, ruleset=cfg.ruleset, seed=cfg.seed,
                                      num_env_runners=0))  # fmt: skip
    base.training(
        lr=space["lr"],
        entropy_coeff=space["entropy_coeff"],
        clip_param=space["clip_param"],
        train_batch_size_per_learner=space["train_batch_size_per_learner"],
        minibatch_size=space["minibatch_size"],
    )
    base.rl_module(model_config={"width": space["width"]})
    init_ray(cfg.address)
    register_envs()
    storage = cfg.storage.resolve()
    tuner = tune.Tuner(
        base.algo_class,  # the class, not "PPO": a string imports every algorithm
        param_space=base,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            num_samples=cfg.num_samples,
            search_alg=_search_alg(cfg),
            scheduler=ASHAScheduler(
                time_attr="training_iteration", max_t=cfg.max_iters, grace_period=cfg.grace_period
            ),
            max_concurrent_trials=cfg.max_concurrent,
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=str(storage),
            stop={"training_iteration": cfg.max_iters},
            verbose=1,
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=METRIC, mode="max")
    c = best.config
    best_config = {
        "task": cfg.task,
        "ruleset": cfg.ruleset,
        "lr": c["lr"],
        "entropy_coeff": c["entropy_coeff"],
        "clip_param": c["clip_param"],
        # AlgorithmConfig.to_dict() keeps these two under private names.
        "train_batch_size": c["_train_batch_size_per_learner"],
        "minibatch_size": c["minibatch_size"],
        "width": (c.get("_model_config") or {}).get("width", 64),
    }
    doc = {
        "best_config": best_config,
        "best_return": best.metrics.get("env_runners", {}).get("episode_return_mean"),
        "trials": len(results),
        "errors": results.num_errors,
        "path": str(storage / cfg.name),
    }
    write_json(storage / cfg.name / "best_config.json", best_config)
    write_json(storage / cfg.name / "sweep_summary.json", doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(SweepConfig, args=argv)
    try:
        doc = sweep(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{doc['trials']} trials ({doc['errors']} errors); best mean training return "
          f"{doc['best_return']}; wrote {doc['path']}/best_config.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

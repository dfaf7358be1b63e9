"""Ray Tune sweep of PPO hyperparameters for the front door's team, with run.py's
flags and defaults (the three-role ``ed`` team on mass_casualty unless told otherwise).

How to run::

    python experiments/sweep.py --task mass_casualty --output runs/sweeps/mc   # 8 trials
    python experiments/run.py --config runs/sweeps/mc/best_config.json        # the winner
    python experiments/sweep.py --ruleset classic --task dynamic_queue --num-samples 16

Searches learning rate, entropy bonus, clip range, train batch and minibatch sizes and
the model width (those flags are overridden by the search; every other run.py flag —
``--ruleset``, ``--hints``, ``--algo``, ``--seed`` … — holds for every trial and goes
into ``best_config.json``). ASHA stops weak trials early on their mean training return;
with ``optuna`` installed the search is Optuna's TPE (``--search random`` forces random
sampling). The best trial is then picked on a **held-out evaluation**: each trial's
greedy team plays ``--select-episodes`` seeds from ``--select-seed-start`` (20,000 …,
disjoint from the training seeds < 10,000 and from run.py's evaluation seeds 10,000 …)
and the highest mean ``--select-metric`` (the task score by default) wins. Results are
in Tune's layout under ``--output`` (one directory per trial), with
``sweep_summary.json`` (every trial's settings, training return and held-out scores)
and ``best_config.json`` (run.py's fields, so ``run.py --config`` trains the same kind
of team with the winning hyperparameters).

Budget: at most ``--num-samples`` × ``--train-iters`` iterations (8 × 40); ASHA stops
most trials after 4 or 16. One ``ed`` iteration of 2,000 env steps took 16 s on our
2-core machine (``run.py --train-iters 2``), so expect tens of minutes at the defaults
(not timed end to end here).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.report import mean_ci, write_json
from agents.rllib.quiet import silence_harmless_logs
from agents.rllib.selection import VALIDATION_SEED_START
from agents.rllib.training import (
    TRAIN_SEED_LIMIT,
    _summarise,
    build_config,
    init_ray,
    register_envs,
)
from experiments.run import CLI_CONFIG, RunConfig, load_config_file

METRIC = "env_runners/episode_return_mean"
"""ASHA's early-stopping metric (training episodes; the selection is held out)."""
SEARCHES = ("auto", "optuna", "random")
SELECT_METRICS = ("score", "pct_of_oracle")
SELECT_SEED_START = VALIDATION_SEED_START
"""First held-out selection seed: above run.py's evaluation seeds (10,000 …), so the
winner is not picked on the seeds its final results are reported on."""


@dataclass(frozen=True)
class SweepConfig(RunConfig):
    """A Tune sweep of PPO hyperparameters on one task, picked on held-out seeds.
    Takes run.py's flags (the searched hyperparameters are overridden by the search)."""

    output: Path | None = None
    """Sweep directory (Tune's trials, sweep_summary.json, best_config.json); default
    runs/sweeps/<task>-<ruleset>-<UTC time>."""
    train_iters: int = 40
    """Training iterations of a trial that ASHA never stops (run.py's default)."""
    num_samples: int = 8
    """Trials to run."""
    grace_period: int = 4
    """Iterations every trial gets before ASHA may stop it."""
    search: Literal[SEARCHES] = "auto"  # type: ignore[valid-type]
    """auto (Optuna if installed, else random), optuna, or random."""
    max_concurrent: int = 1
    """Trials running at once (1 suits a 2-core machine)."""
    select_episodes: int = 10
    """Held-out episodes each trial's greedy team plays to pick the best trial."""
    select_seed_start: int = SELECT_SEED_START
    """First held-out selection seed (disjoint from training and run.py's test seeds)."""
    select_metric: Literal[SELECT_METRICS] = "score"  # type: ignore[valid-type]
    """Mean over the selection seeds that picks the best trial (score: the task score,
    ``ed`` v1's share of the bound's serve reward, else the grader)."""
    batch_sizes: tuple[int, ...] = (1000, 2000, 4000)
    """Train batch sizes (env steps per iteration) the search draws from."""
    minibatch_sizes: tuple[int, ...] = (128, 256)
    """SGD minibatch sizes the search draws from."""

    def validate(self) -> SweepConfig:
        if self.no_train or self.resume or self.checkpoint is not None:
            raise ValueError("a sweep trains new trials: drop --no-train, --resume, --checkpoint")
        if self.init == "bc":
            raise ValueError("a sweep's trials start from random weights (Tune builds them): "
                             "drop --init bc, or pass --init none")  # fmt: skip
        if self.num_samples < 1 or self.select_episodes < 1 or self.grace_period < 1:
            raise ValueError("--num-samples, --select-episodes and --grace-period must be >= 1")
        if (
            not self.batch_sizes
            or not self.minibatch_sizes
            or (max(self.minibatch_sizes) > min(self.batch_sizes))
        ):
            raise ValueError("--minibatch-sizes must all be <= every --batch-sizes value")
        if self.select_seed_start < TRAIN_SEED_LIMIT:
            raise ValueError(f"--select-seed-start must be >= {TRAIN_SEED_LIMIT}: lower seeds "
                             "are training seeds")  # fmt: skip
        # init "none" is recorded in best_config.json: run.py then trains from scratch.
        return replace(super().validate(), init="none")

    def run_config(self, **hyperparameters: Any) -> RunConfig:
        """run.py's config: this sweep's run fields with the given hyperparameters."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)}
        values.update(output=None, config=None, **hyperparameters)
        return RunConfig(**values)

    def directory(self) -> Path:
        if self.output is not None:
            return self.output
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        return Path("runs/sweeps") / f"{self.task}-{self.ruleset}-{stamp}"


def search_space(cfg: SweepConfig) -> dict:
    from ray import tune

    return {
        "lr": tune.loguniform(1e-4, 3e-3),
        "entropy_coeff": tune.uniform(0.0, 0.03),
        "clip_param": tune.uniform(0.1, 0.3),
        "train_batch_size_per_learner": tune.choice(list(cfg.batch_sizes)),
        "minibatch_size": tune.choice(list(cfg.minibatch_sizes)),
        "width": tune.choice([32, 64, 128]),
    }


def _search_alg(cfg: SweepConfig):
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


def trial_hyperparameters(config: dict) -> dict:
    """A trial's searched values under run.py's field names."""
    return {
        "lr": config["lr"],
        "entropy_coeff": config["entropy_coeff"],
        "clip_param": config["clip_param"],
        # AlgorithmConfig.to_dict() keeps these two under private names.
        "train_batch_size": config["_train_batch_size_per_learner"],
        "minibatch_size": config["minibatch_size"],
        "width": (config.get("_model_config") or {})["width"],
    }


def held_out_rows(cfg: RunConfig, checkpoint: Path, seeds: list[int]) -> list[dict]:
    """The greedy trained team (or consultant) of ``checkpoint`` on ``seeds``: one row
    per episode, as in run.py's results."""
    import torch

    torch.set_num_threads(1)  # tiny forwards, as in run.py's evaluation
    play = cfg.play  # the ruleset's front door (agents.frontdoor.plays)
    return play.evaluate_trained(cfg, play.trained_at(checkpoint), seeds)


def select_best(trials: list[dict], metric: str) -> dict:
    """The trial with the highest held-out mean ``metric`` (ties: the other selection
    metric, then the earlier trial)."""
    if not trials:
        raise ValueError("no trial finished: nothing to select (see the trial errors above)")
    other = next(m for m in SELECT_METRICS if m != metric)
    return max(trials, key=lambda t: (t["held_out"][metric], t["held_out"][other]))


def sweep(cfg: SweepConfig) -> dict:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    cfg = cfg.validate()
    out = cfg.directory().resolve()
    if (out / "best_config.json").exists():
        raise ValueError(f"{out} already holds a sweep; pass another --output")
    space = search_space(cfg)
    base = build_config(cfg.train_settings())
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
    tuner = tune.Tuner(
        base.algo_class,  # the class, not "PPO": a string imports every algorithm
        param_space=base,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            num_samples=cfg.num_samples,
            search_alg=_search_alg(cfg),
            scheduler=ASHAScheduler(
                time_attr="training_iteration",
                max_t=cfg.train_iters,
                grace_period=min(cfg.grace_period, cfg.train_iters),
            ),
            max_concurrent_trials=cfg.max_concurrent,
        ),
        run_config=tune.RunConfig(
            name=out.name,
            storage_path=str(out.parent),
            stop={"training_iteration": cfg.train_iters},
            # Every iteration, keeping the last: ASHA may stop a trial at any one.
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=1, checkpoint_at_end=True, num_to_keep=1
            ),
            verbose=1,
        ),
    )
    results = tuner.fit()
    seeds = list(range(cfg.select_seed_start, cfg.select_seed_start + cfg.select_episodes))
    trials = []
    for result in results:
        if result.error is not None or result.checkpoint is None:
            continue
        rows = held_out_rows(cfg, Path(result.checkpoint.path), seeds)
        held_out = {m: mean_ci([r[m] for r in rows]) for m in SELECT_METRICS}
        trials.append({
            "trial": result.metrics.get("trial_id", Path(result.path).name),
            "path": result.path,
            "checkpoint": result.checkpoint.path,
            "hyperparameters": trial_hyperparameters(result.config),
            "iterations": result.metrics.get("training_iteration"),
            "training_team_return": _summarise(result.metrics, 0, 0.0)["episode_return_mean"],
            "held_out": {m: v[0] for m, v in held_out.items()},
            "held_out_ci95": {m: v[1] for m, v in held_out.items()},
        })  # fmt: skip
    best = select_best(trials, cfg.select_metric)
    best_config = _json_config(cfg.run_config(**best["hyperparameters"]))
    doc = {
        "selected_on": f"mean {cfg.select_metric} of each trial's greedy "
        f"{cfg.play.trained_name} on held-out seeds "
        f"{seeds[0]}–{seeds[-1]}",
        "best": best,
        "trials": trials,
        "trial_errors": results.num_errors,
        "path": str(out),
    }
    write_json(out / "best_config.json", best_config)
    write_json(out / "sweep_summary.json", doc)
    return doc


def _json_config(cfg: RunConfig) -> dict:
    d = dataclasses.asdict(cfg)
    for key, value in d.items():
        if isinstance(value, Path):
            d[key] = str(value)
    d["compare"] = list(cfg.compare)
    return d


def main(argv: list[str] | None = None) -> int:
    import argparse

    silence_harmless_logs()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv if argv is not None else sys.argv[1:])
    try:
        run_defaults = load_config_file(known.config) if known.config else RunConfig()
        default = SweepConfig(**dataclasses.asdict(run_defaults))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        cfg = tyro.cli(SweepConfig, args=argv, default=default, config=CLI_CONFIG)
    except SystemExit as e:  # --help (0) or a bad flag (2, tyro printed why)
        return e.code if isinstance(e.code, int) else 2
    try:
        doc = sweep(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    best = doc["best"]
    print(f"{len(doc['trials'])} trials evaluated ({doc['trial_errors']} errors); best: "
          f"trial {best['trial']} by {doc['selected_on']}: {cfg.select_metric} "
          f"{best['held_out'][cfg.select_metric]:.4f}\n"
          f"wrote {doc['path']}/best_config.json; train with it:\n"
          f"  python experiments/run.py --config {doc['path']}/best_config.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

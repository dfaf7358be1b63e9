"""RLlib throughput of the front door as users run it: env steps/s sampled and trained,
simulated episodes per second of training wall time, and where the sampling and the
learner time go, for 0, 1 and 2 EnvRunners.

How to run::

    python experiments/bench_rllib.py --iters 2             # ed, runners 0 1 2
    python experiments/bench_rllib.py --runners 1 4 8 15    # on a bigger machine
    python experiments/bench_rllib.py --ruleset classic     # the single-agent classic env
    python experiments/bench_rllib.py --runners 0 --ed-version v2 --envs-per-runner 16

The settings are ``experiments/run.py``'s: :class:`experiments.run.RunConfig` with its
defaults (``--ruleset ed``: the three role modules, hints on) builds the
``TrainSettings``; only the EnvRunner count changes (and, when given, the ed version,
envs per runner and rollout fragment length), and the driver's torch threads
are set as ``agents.rllib.training.train`` sets them. Each runner count builds the
algorithm, trains one warm-up iteration (actor start, first weight sync), then times
``--iters`` iterations.

Figures per runner count (sums over the timed iterations):

* ``sampled_steps_per_s``: env steps sampled / wall time of the timed iterations;
* ``trained_steps_per_s``: env steps of the train batches / ``learner_s``, the summed
  wall time of ``LearnerGroup.update`` (learner connector pipeline, GAE included, and
  all SGD epochs);
* ``episodes_per_s``: simulated episodes finished / wall time (the issue-18 measure:
  it counts a changed sub-step design fairly);
* ``sampling_profile``: shares of the EnvRunners' own ``sample()`` time (summed over
  runners), from wall-clock sums around each piece of the loop, installed in every
  sampling runner (Ray 2.60, ``ray/rllib/env/multi_agent_env_runner.py`` ``_sample``):
  ``env_step`` the vector env's ``step`` (auto-resets of finished sub-envs included),
  ``env_reset`` its explicit ``reset``, ``module_forward`` the module's
  ``forward_exploration``, ``env_to_module`` / ``module_to_env`` the two connector
  pipelines, ``episode_bookkeeping`` the episodes' ``add_env_step`` /
  ``add_env_reset``; ``other`` is the rest of the loop (callbacks, metrics,
  numpy-ising finished episodes). RLlib's own ``env_runners/*_timer`` results are
  EMA-smoothed per-call means (coefficient 0.01) that the first, slow calls dominate
  for hundreds of calls, so they are not used; ``sampling_s`` (the driver's whole
  sampling call, Ray transfer included) is measured the same way;
* with ``--sample-ahead`` (run.py's default) ``sampling_s`` is the driver's wait for
  the batch in flight (the runners sample while the learner trains), so sampling and
  learner shares of the wall time no longer add up to one;
* ``learner_profile``: shares of ``learner_s`` (``LearnerGroup.update``):
  ``learner_connector`` the learner connector pipeline, ``gae`` its
  ``general_advantage_estimation`` piece, ``update`` the rest (forward, loss,
  backward, optimiser over all epochs). PPO only, local learner (run.py's defaults).

Results to expect on a 2-core machine (docs/benchmarks/bench_rllib.md): 0 runners
(sampling in the driver) slowest; 1 and 2 runners (run.py's default) about twice its
episodes/s with sampling ahead (the default since 2026-12-03), the learner then ~3/4 of
the wall time; ``--sample-ahead False`` gives RLlib's PPO, sampling and learning in
turn. ``--decision-steps`` (RLlib sees an agent only when it has a choice) and
``--num-epochs`` / ``--minibatch-size`` measure the settings of
docs/benchmarks/front_door_speed.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.report import run_record, save_json

ENV_STEPS = "num_env_steps_sampled_lifetime"
EPISODES = "num_episodes_lifetime"
AGENT_STEPS = "num_agent_steps_sampled_lifetime"
TOTALS = "_bench_totals"
SAMPLING = "_sampling"
"""EnvRunner attribute holding the profile's running sums (seconds)."""


def _timed(fn: Callable, totals: dict[str, float], key: str) -> Callable:
    """``fn`` with its wall time added to ``totals[key]`` on every call."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - t

    return wrapper


class _TimedPipeline:
    """A connector pipeline whose calls are timed; everything else (state, pieces) is
    the pipeline's own."""

    def __init__(self, pipeline: Any, totals: dict[str, float], key: str) -> None:
        self._pipeline = pipeline
        self._call = _timed(pipeline.__call__, totals, key)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


def _patch_episode_class(cls: type, name: str, totals: dict[str, float]) -> None:
    """Time ``cls.name`` while the runner samples (the learner connector, in the driver
    with 0 runners, also adds steps to episodes: not counted)."""
    fn = getattr(cls, name)
    if getattr(fn, "_bench", False):
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not totals[SAMPLING]:
            return fn(*args, **kwargs)
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals["episode_bookkeeping"] += time.perf_counter() - t

    wrapper._bench = True  # type: ignore[attr-defined]
    setattr(cls, name, wrapper)


def install_runner_timers(runner: Any) -> None:
    """Wrap the pieces of one EnvRunner's sampling loop (in its own process) in timers
    that sum wall time; RLlib's own timers are EMA-smoothed per-call means (coefficient
    0.01), dominated for hundreds of calls by the first, slow, call."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    totals: dict[str, float] = dict.fromkeys((*PROFILE_KEYS, SAMPLING), 0.0)
    setattr(runner, TOTALS, totals)
    sample = _timed(runner.sample, totals, "sample")

    def flagged_sample(*args: Any, **kwargs: Any) -> Any:
        totals[SAMPLING] = 1.0
        try:
            return sample(*args, **kwargs)
        finally:
            totals[SAMPLING] = 0.0

    runner.sample = flagged_sample
    runner.env.step = _timed(runner.env.step, totals, "env_step")
    runner.env.reset = _timed(runner.env.reset, totals, "env_reset")
    runner.module.forward_exploration = _timed(
        runner.module.forward_exploration, totals, "module_forward"
    )
    runner._env_to_module = _TimedPipeline(runner._env_to_module, totals, "env_to_module")
    runner._module_to_env = _TimedPipeline(runner._module_to_env, totals, "module_to_env")
    multi = isinstance(runner, MultiAgentEnvRunner)
    episode_cls = MultiAgentEpisode if multi else SingleAgentEpisode
    for name in ("add_env_step", "add_env_reset"):
        _patch_episode_class(episode_cls, name, totals)


def read_runner_timers(runner: Any) -> dict[str, float]:
    """The runner's sums since the last read (then zeroed)."""
    totals = getattr(runner, TOTALS)
    out = {k: totals[k] for k in PROFILE_KEYS}
    for k in PROFILE_KEYS:
        totals[k] = 0.0
    return out


PROFILE_KEYS = (
    "sample",
    "env_step",
    "env_reset",
    "module_forward",
    "env_to_module",
    "module_to_env",
    "episode_bookkeeping",
)
"""``sample`` is the runner's whole ``sample()`` call; the rest are its parts."""


@dataclass
class BenchConfig:
    """RLlib sampling/training throughput of run.py's training, by EnvRunner count."""

    ruleset: Literal["ed", "classic"] = "ed"
    """ed: the front door's default (three role modules, hints on); classic: the
    single-agent Queue Doctor env with the slot scorer."""
    task: str = "mass_casualty"
    """Task to train on."""
    runners: tuple[int, ...] = (0, 1, 2)
    """EnvRunner counts to measure."""
    iters: int = 3
    """Timed iterations per runner count (after one warm-up iteration)."""
    train_batch_size: int | None = None
    """Env steps per iteration (default: run.py's)."""
    ed_version: str | None = None
    """ed env version (default: run.py's, v1); e.g. v2 (banked presentations)."""
    envs_per_runner: int | None = None
    """Envs per EnvRunner, stepped as one batch (default: run.py's, 16 on ed, 8 on
    classic)."""
    rollout_fragment_length: int | None = None
    """Env steps per runner per sample call (default: RLlib's "auto")."""
    num_epochs: int | None = None
    """PPO epochs per iteration (default: the front door's)."""
    minibatch_size: int | None = None
    """PPO minibatch size (default: the front door's)."""
    learner_threads: int | None = None
    """torch threads of the driver's learner (default: as train() sets them)."""
    decision_steps: bool | None = None
    """ed: RLlib sees an agent only when it has a choice (agents.rllib.decisions; default:
    run.py's, off)."""
    sample_ahead: bool | None = None
    """ppo: the runners sample the next batch while the learner trains (default: run.py's;
    agents.rllib.sample_ahead). The driver's sampling time is then its wait for them."""
    num_learners: int | None = None
    """Learner actors (default: run.py's, 0 = the driver learns); with several, the
    learner-connector share is not measured (it runs inside the actors)."""
    out: Path = Path("results/bench_rllib.json")
    """JSON output."""


def _get(d: dict, path: tuple[str, ...]) -> float:
    for k in path:
        d = d.get(k, {})
    return float(d) if isinstance(d, (int, float)) else 0.0


def settings(cfg: BenchConfig, runners: int):
    """run.py's TrainSettings for this ruleset and task, with ``runners`` EnvRunners."""
    from experiments.run import RunConfig

    given = {"ed_version": cfg.ed_version, "envs_per_runner": cfg.envs_per_runner,
             "train_batch_size": cfg.train_batch_size, "minibatch_size": cfg.minibatch_size,
             "decision_steps": cfg.decision_steps, "num_learners": cfg.num_learners,
             "sample_ahead": cfg.sample_ahead}  # fmt: skip
    run = RunConfig(task=cfg.task, ruleset=cfg.ruleset, num_env_runners=runners,
                    **{k: v for k, v in given.items() if v is not None})  # fmt: skip
    if cfg.train_batch_size is not None and cfg.minibatch_size is None:
        run = replace(run, minibatch_size=min(run.minibatch_size, cfg.train_batch_size))
    s = run.validate().train_settings()  # checks the run.py flags given here
    # num_epochs is a TrainSettings field, not a run.py flag.
    epochs = {} if cfg.num_epochs is None else {"num_epochs": cfg.num_epochs}
    return replace(s, train_iters=cfg.iters, **epochs)


def _agent_steps(result: dict) -> float:
    """Agent steps sampled so far (summed over agents; the env steps on classic)."""
    per_agent = result.get("env_runners", {}).get(AGENT_STEPS)
    if isinstance(per_agent, dict):
        return float(sum(per_agent.values()))
    return _get(result, ("env_runners", ENV_STEPS))


def _runner_totals(algo: Any, runners: int) -> dict[str, float]:
    """The sampling runners' sums since the last call, added over runners."""
    parts = algo.env_runner_group.foreach_env_runner(
        read_runner_timers, local_env_runner=runners == 0
    )
    return {k: sum(p[k] for p in parts) for k in PROFILE_KEYS}


def measure(cfg: BenchConfig, runners: int) -> dict:
    import ray.rllib.algorithms.ppo.ppo as ppo_mod
    import torch
    from ray.rllib.connectors.learner import GeneralAdvantageEstimation

    from agents.rllib.sample_ahead import SampleAheadPPO
    from agents.rllib.training import _local_learner_threads, build_config

    s = settings(cfg, runners)
    s.validate()  # e.g. more Ray actors than this machine's CPUs
    threads = _local_learner_threads(s)  # as train() does for a local learner
    if cfg.learner_threads is not None:
        torch.set_num_threads(cfg.learner_threads)
    config = build_config(s)
    if cfg.rollout_fragment_length is not None:  # a bench-only knob: run.py keeps "auto"
        config.env_runners(rollout_fragment_length=cfg.rollout_fragment_length)
    algo = config.build_algo()
    driver = dict.fromkeys(("sampling", "learner", "learner_connector", "gae"), 0.0)
    saved = ppo_mod.synchronous_parallel_sample, GeneralAdvantageEstimation.__call__
    collect = SampleAheadPPO._collect  # with --sample-ahead: the wait for the batch
    try:
        SampleAheadPPO._collect = _timed(collect, driver, "sampling")
        algo.env_runner_group.foreach_env_runner(
            install_runner_timers, local_env_runner=runners == 0
        )
        ppo_mod.synchronous_parallel_sample = _timed(saved[0], driver, "sampling")
        GeneralAdvantageEstimation.__call__ = _timed(saved[1], driver, "gae")
        group = algo.learner_group
        group.update = _timed(group.update, driver, "learner")
        learner = group._learner  # the local learner (None with learner actors)
        if learner is not None:
            connector = _timed(learner._learner_connector, driver, "learner_connector")
            learner._learner_connector = connector
        r = algo.train()  # warm-up: actor start, first weight sync, first forward passes
        steps0, eps0 = _get(r, ("env_runners", ENV_STEPS)), _get(r, ("env_runners", EPISODES))
        agent_steps0 = _agent_steps(r)
        _runner_totals(algo, runners)
        driver.update(dict.fromkeys(driver, 0.0))
        t0 = time.perf_counter()
        for _ in range(cfg.iters):
            r = algo.train()
        wall = time.perf_counter() - t0
        prof = _runner_totals(algo, runners)
        steps = _get(r, ("env_runners", ENV_STEPS)) - steps0
        eps = _get(r, ("env_runners", EPISODES)) - eps0
        agent_steps = _agent_steps(r) - agent_steps0
        ep_len = _get(r, ("env_runners", "episode_len_mean"))
    finally:
        ppo_mod.synchronous_parallel_sample, GeneralAdvantageEstimation.__call__ = saved
        SampleAheadPPO._collect = collect
        algo.stop()
        if threads is not None:
            torch.set_num_threads(threads)
    sample = prof.pop("sample")
    sampling = {k: v / sample for k, v in prof.items()}
    sampling["other"] = 1.0 - sum(sampling.values())
    learn = driver["learner"]
    return {
        "num_env_runners": runners,
        "env_steps": int(steps),
        "episodes": int(eps),
        "agent_steps": int(agent_steps),
        "episode_len_mean": ep_len,
        "wall_s": wall,
        "sampled_steps_per_s": steps / wall,
        "trained_steps_per_s": steps / learn,
        "episodes_per_s": eps / wall,
        "sampling_s": driver["sampling"],
        "runner_sample_s": sample / max(1, runners),
        "learner_s": learn,
        "sampling_share_of_wall": driver["sampling"] / wall,
        "learner_share_of_wall": learn / wall,
        "sampling_profile": sampling,
        "learner_profile": None  # runs inside the learner actors: not timed here
        if s.num_learners > 0
        else {
            "learner_connector": driver["learner_connector"] / learn,
            "gae": driver["gae"] / learn,
            "update": 1.0 - driver["learner_connector"] / learn,
        },
    }


def main(argv: list[str] | None = None) -> int:
    from agents.rllib.training import init_ray, register_envs

    cfg = tyro.cli(BenchConfig, args=argv)
    init_ray(None)
    register_envs()
    s = settings(cfg, 0)
    rows = []
    for n in cfg.runners:
        row = measure(cfg, n)
        rows.append(row)
        prof = "  ".join(f"{k} {v:.0%}" for k, v in row["sampling_profile"].items())
        lp = row["learner_profile"]
        conn = f", connector {lp['learner_connector']:.0%}" if lp else ""
        print(f"runners {n}: sampled {row['sampled_steps_per_s']:,.0f}/s  trained "
              f"{row['trained_steps_per_s']:,.0f}/s  episodes {row['episodes_per_s']:.2f}/s  "
              f"sampling: {prof}  learner {row['learner_s']:.1f} s"
              f"{conn}", flush=True)  # fmt: skip
    base = rows[0]["sampled_steps_per_s"]
    for row in rows:
        row["sampled_vs_first"] = row["sampled_steps_per_s"] / base
    doc = {
        **run_record("bench_rllib.py", argv),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "ruleset": cfg.ruleset,
        "task": cfg.task,
        "hints": s.hints,
        "ed_version": s.ed_version,
        "envs_per_runner": s.runner_envs,
        "rollout_fragment_length": cfg.rollout_fragment_length or "auto",
        "decision_steps": s.decision_steps,
        "sample_ahead": s.sample_ahead,
        "num_learners": s.num_learners,
        "train_batch_size": s.train_batch_size,
        "minibatch_size": s.minibatch_size,
        "num_epochs": s.num_epochs,
        "results": rows,
    }
    save_json(cfg.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

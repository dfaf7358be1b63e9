"""Train a policy with RLlib (new API stack) on the single-agent queue envs, with
atomic per-iteration checkpoints, resume, and fault-tolerant EnvRunners.

Training episodes draw their seeds from ``[0, TRAIN_SEED_LIMIT)``; evaluation uses
seeds from ``TRAIN_SEED_LIMIT`` on, so they are held out by construction.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.rllib.hints import HINT_WEIGHT
from agents.rllib.settings import ALGOS as ALGOS
from agents.rllib.settings import TrainSettings

TEACHER_KL, TEACHER_COEFF = "teacher_kl", "teacher_coeff"
"""Learner metrics of the teacher term (:mod:`agents.rllib.teacher`)."""

TRAIN_SEED_LIMIT = 10_000
ENV_NAME = "edmarl_queue"
ED_ENV_NAME = "edmarl_ed"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "train_state.json"
MODULE_ID = "default_policy"
DISCRETE_ACTIONS = {"normalize_actions": False, "clip_actions": False}
"""Every env here has Discrete action spaces, which RLlib's unsquash and clip leave as
they are; turned off, its NormalizeAndClipActions connector no longer deep-copies every
action at every env step (~4 % of an ``ed`` runner's sampling time)."""


def _env_creator(env_config: dict) -> Any:
    from envs.gym_queue import QueueEnv

    return QueueEnv(
        env_config["task"], env_config.get("ruleset", "classic"), seed_range=(0, TRAIN_SEED_LIMIT)
    )


def _ed_env_creator(env_config: dict) -> Any:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from envs.ed_triage_v1 import ED_ENVS

    # Training needs rewards, not grader scores: the cheap static normaliser avoids an
    # ILP per episode.
    env = ED_ENVS[env_config.get("ed_version", "v0")](
        env_config["task"], normaliser="static", seed_range=(0, TRAIN_SEED_LIMIT)
    )
    if env_config.get("hints"):
        from agents.rllib.hints import HintedEdEnv

        env = HintedEdEnv(env)
    from agents.rllib.variants import wrap_training_env

    env = wrap_training_env(env, env_config)
    if env_config.get("decision_steps"):
        from agents.rllib.decisions import DecisionStepsEnv

        return DecisionStepsEnv(env)
    return ParallelPettingZooEnv(env)


SERVE_REWARD_MEAN = "serve_reward_mean"
"""Training metric (``ed``): mean Σ served rewards per episode, the quantity the
oracle bound bounds, over the same window as RLlib's episode returns."""
SMOOTHING_EPISODES = 100
"""RLlib's default ``metrics_num_episodes_for_smoothing``: the return's window."""


def _log_serve_reward(*, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
    """RLlib ``on_episode_end`` callback: log the finished episode's serve reward."""
    if metrics_logger is None or not hasattr(episode, "agent_episodes"):
        return
    for info in episode.get_infos(-1).values():
        grader = info.get("grader") if isinstance(info, dict) else None
        if grader is not None:
            metrics_logger.log_value(
                SERVE_REWARD_MEAN, float(grader["cumulative_reward"]), reduce="mean",
                window=SMOOTHING_EPISODES,
            )  # fmt: skip
            return


def register_envs() -> None:
    from ray.tune.registry import register_env

    register_env(ENV_NAME, _env_creator)
    register_env(ED_ENV_NAME, _ed_env_creator)


def ed_module_specs(
    task: str,
    width: int | None,
    hints: bool = False,
    hint_weight: float = HINT_WEIGHT,
    ed_version: str = "v0",
) -> dict[str, Any]:
    """One slot-scorer RLModuleSpec per ``ed`` role, with that role's slot layout
    (``width`` None: taken from the algorithm's model_config, which a sweep can set;
    the slot count is the env's: a suite scenario has its generator's ``max_patients``)."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from agents.rllib.modules import SlotScorerModule
    from envs.ed.config import AGENTS, ROLE_OF
    from envs.ed.observation import FEATURES
    from envs.ed_triage_v1 import ED_ENVS

    n = ED_ENVS[ed_version](task=task).n_slots
    return {
        agent: RLModuleSpec(
            module_class=SlotScorerModule,
            model_config={
                **({} if width is None else {"width": width}),
                "n_slots": n,
                "context_features": len(FEATURES[ROLE_OF[agent]][1]),
                "hints": hints,
                "hint_weight": hint_weight,
            },
        )
        for agent in AGENTS
    }


def _map_agent_to_module(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    return agent_id  # one module per role, named after the agent


def build_config(s: TrainSettings) -> Any:
    """The RLlib AlgorithmConfig for these settings."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.ppo import PPOConfig

    from agents.rllib.sample_ahead import SampleAheadPPOConfig
    from envs.rulesets import get_ruleset

    # Sampling ahead needs remote EnvRunners; without them the run is RLlib's PPO as is
    # (its per-iteration connector-state sync included).
    ahead = s.sample_ahead and s.num_env_runners > 0
    cls = {"ppo": SampleAheadPPOConfig if ahead else PPOConfig, "appo": APPOConfig}[s.algo]
    # RLlib's batch and minibatch sizes are per learner; ours are the iteration's.
    learners = max(1, s.num_learners)
    training: dict[str, Any] = {
        "lr": s.lr,
        "gamma": s.gamma,
        "entropy_coeff": s.entropy_coeff,
        "train_batch_size_per_learner": s.train_batch_size // learners,
        "clip_param": s.clip_param,
    }
    if s.algo == "ppo":
        training.update(minibatch_size=s.minibatch_size // learners, num_epochs=s.num_epochs)
    training.update(s.extra)
    # The ruleset's builder (its registry entry's rllib_config): classic_config or team_config.
    config = get_ruleset(s.ruleset).load("rllib_config")(cls(), s, training)
    if s.algo == "ppo":
        from agents.rllib.learner import PROXIMAL_KEY, LeanPPOTorchLearner

        config = config.learners(learner_class=LeanPPOTorchLearner)
        if ahead:  # batches one update behind
            config = config.learners(learner_config_dict={PROXIMAL_KEY: True})
    return config


def classic_config(base: Any, s: TrainSettings, training: dict[str, Any]) -> Any:
    """The AlgorithmConfig of a one-role ruleset: one slot-scorer module, the queue env."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from agents.rllib.modules import SlotScorerModule

    return (
        base
        # RLlib's env pre-check steps unmasked random actions; our envs handle them as
        # Queue Doctor does, so the check would only add start-up time.
        .environment(
            ENV_NAME,
            env_config={"task": s.task, "ruleset": s.ruleset},
            disable_env_checking=True,
            **DISCRETE_ACTIONS,
        )
        .env_runners(num_env_runners=s.num_env_runners, num_envs_per_env_runner=s.runner_envs)
        .learners(num_learners=s.num_learners)
        # The width goes in the algorithm's model_config (not the spec's), so that a
        # Tune sweep can set it: a spec's own model_config would take precedence.
        .rl_module(
            rl_module_spec=RLModuleSpec(module_class=SlotScorerModule),
            model_config={"width": s.width},
        )
        .training(**training)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=100)
        .debugging(seed=s.seed)
    )


def team_config(base: Any, s: TrainSettings, training: dict[str, Any]) -> Any:
    """The AlgorithmConfig of a team ruleset: one module per role (or the variant's
    modules, :func:`agents.rllib.variants.team_modules`), the PettingZoo env."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec

    from agents.rllib.runner import LeanMultiAgentEnvRunner
    from agents.rllib.variants import team_modules

    module_ids, mapping, specs = team_modules(s, _map_agent_to_module)
    env_config = {"task": s.task, "hints": s.hints, "ed_version": s.ed_version,
                  "critic": s.critic, "share_params": s.share_params,
                  "decision_steps": s.decision_steps}  # fmt: skip
    return (
        base.environment(
            ED_ENV_NAME, env_config=env_config, disable_env_checking=True, **DISCRETE_ACTIONS
        )
        .env_runners(
            num_env_runners=s.num_env_runners,
            num_envs_per_env_runner=s.runner_envs,
            env_runner_cls=LeanMultiAgentEnvRunner,
        )
        .learners(num_learners=s.num_learners)
        .multi_agent(
            policies=set(module_ids), policy_mapping_fn=mapping, policies_to_train=module_ids
        )
        # The width in the algorithm's model_config, as for classic (a sweep sets it).
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs), model_config={"width": s.width}
        )
        .training(**training)
        .callbacks(on_episode_end=_log_serve_reward)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=100)
        .debugging(seed=s.seed)
    )


def init_ray(address: str | None) -> None:
    import ray

    from agents.rllib.quiet import silence_harmless_logs

    silence_harmless_logs()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)


def _read_state(run_dir: Path) -> dict | None:
    """The newest complete checkpoint's train state, or None; a corrupt state file is a
    ValueError (resuming from a half-understood history would lose or repeat work)."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):
        f = run_dir / name / STATE_FILE
        if f.is_file():
            try:
                state = json.loads(f.read_text())
                history = state["history"]
                if not isinstance(history, list) or not all(
                    isinstance(h, dict) and isinstance(h.get("iteration"), int) for h in history
                ):
                    raise TypeError("history is not a list of iterations")
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
                raise ValueError(
                    f"--resume: {f} is corrupt ({type(e).__name__}: {e}); nothing was "
                    "trained. Restore it, or start over with --overwrite"
                ) from None
            return {"path": run_dir / name, **state}
    return None


def _save_checkpoint(algo: Any, run_dir: Path, state: dict) -> Path:
    """Save next to the live checkpoint, then swap: a crash at any point leaves a
    complete checkpoint under ``checkpoint`` or ``checkpoint.old``."""
    final = run_dir / CHECKPOINT_DIR
    tmp = run_dir / f"{CHECKPOINT_DIR}.tmp"
    old = run_dir / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def train(
    s: TrainSettings,
    run_dir: Path,
    resume: bool = False,
    on_iteration: Callable[[dict], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> dict:
    """Train, checkpointing after every iteration; return the final train state
    (``history``: one dict per iteration; ``bc``: the warm start's report; ``selection``:
    the validation choice). ``on_message`` hears what the warm start is doing."""
    s.validate()
    init_ray(s.address)
    register_envs()
    state: dict = {"settings": asdict(s), "history": []}
    threads = _local_learner_threads(s)
    from agents.rllib.quiet import drop_stderr_lines

    prev = _read_state(run_dir) if resume else None
    if resume and prev is None:
        raise ValueError(f"--resume: no checkpoint under {run_dir}; train without --resume")
    config = build_config(s)
    if s.init == "bc":
        from agents.rllib.imitation import BC_DIR, warm_start
        from agents.rllib.teacher import teacher_training

        bc_dir = run_dir / BC_DIR
        if prev is None:  # a resumed run keeps the clone it started from
            state["bc"] = warm_start(s, run_dir, on_message)
        else:
            state["bc"] = prev.get("bc")
        if s.teacher_term:
            config = config.learners(**teacher_training(s, bc_dir))
    with drop_stderr_lines():  # Ray core's known-harmless line about EnvRunner restarts
        algo = config.build_algo()
    try:
        if prev is not None:
            algo.restore_from_path(str(Path(prev["path"]).resolve()))
            state["history"] = prev["history"]
        elif s.init == "bc":
            from agents.rllib.imitation import restore_clone

            restore_clone(algo, bc_dir)
        t0 = time.time()
        while not _finished(s, state["history"]):
            result = algo.train()
            row = _summarise(result, len(state["history"]) + 1, time.time() - t0)
            state["history"].append(row)
            _save_checkpoint(algo, run_dir, state)
            if on_iteration is not None:
                on_iteration(row)
    finally:
        algo.stop()
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
    if s.init == "bc" and s.validation_episodes > 0:
        from agents.rllib.selection import select_and_record  # (imports training)

        state["selection"] = select_and_record(s, run_dir, on_message)
    return state


def _local_learner_threads(s: TrainSettings) -> int | None:
    """On a local Ray instance with the learner in this process, leave the EnvRunners
    their cores: torch's default (one intra-op thread per core) oversubscribes a small
    machine — PPO iterations on 2 shared cores ran ~9× slower. Returns the previous
    thread count to restore (None: unchanged)."""
    if s.address or os.environ.get("RAY_ADDRESS") or s.num_learners > 0:
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - s.num_env_runners))
    return before


def _finished(s: TrainSettings, history: list[dict]) -> bool:
    if s.timesteps:
        return bool(history) and history[-1]["timesteps"] >= s.timesteps
    return len(history) >= s.train_iters


def _finite(x: Any) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def _count(n: Any) -> int | None:
    return None if n is None else int(n)


def _summarise(result: dict, iteration: int, elapsed: float) -> dict:
    """One history row (``timesteps``, ``episodes``: totals so far). ``episode_return_mean``
    is the team return of an episode, as in the evaluation table's ``return``: RLlib's
    own multi-agent figure sums every agent's return, and in team-reward mode each agent
    gets the whole team reward (3×)."""
    runners = result.get("env_runners", {})
    ret = runners.get("episode_return_mean")
    per_agent = runners.get("agent_episode_returns_mean") or {}
    if per_agent:  # multi-agent: the agents' mean return (= the team return)
        ret = float(np.mean(list(per_agent.values())))
    learners = [v for k, v in result.get("learners", {}).items() if isinstance(v, dict)]
    kl = [float(v[TEACHER_KL]) for v in learners if TEACHER_KL in v]
    coeff = [float(v[TEACHER_COEFF]) for v in learners if TEACHER_COEFF in v]
    # teacher_kl is NaN (null here) once the coefficient is 0: the teacher no longer runs.
    teacher = {}
    if kl and coeff:
        teacher = {"teacher_kl": _finite(np.mean(kl)), "teacher_coeff": coeff[0]}
    return {
        "iteration": iteration,
        "timesteps": int(runners.get("num_env_steps_sampled_lifetime", 0)),
        "episode_return_mean": _finite(ret),
        SERVE_REWARD_MEAN: _finite(runners.get(SERVE_REWARD_MEAN)),
        "episode_len_mean": runners.get("episode_len_mean"),
        "episodes": _count(runners.get("num_episodes_lifetime")),
        "time_s": round(elapsed, 2),
        **teacher,  # with the teacher term: its mean KL over roles and its weight
    }


def load_module(run_dir: Path, module_id: str = MODULE_ID) -> Any:
    """A trained RLModule from a run directory's checkpoint (``module_id``: the role's
    agent name for ``ed`` runs)."""
    prev = _read_state(run_dir)
    if prev is None:
        raise FileNotFoundError(f"no checkpoint under {run_dir}: train first (without --no-train)")
    return load_module_at(Path(prev["path"]), module_id)


def load_module_at(checkpoint: Path, module_id: str = MODULE_ID) -> Any:
    """A trained RLModule from an Algorithm checkpoint directory (ours, or a Tune
    trial's)."""
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = (
        Path(checkpoint) / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE
    ) / module_id
    if not path.exists():
        raise FileNotFoundError(f"no module {module_id!r} in the checkpoint {checkpoint}")
    return RLModule.from_checkpoint(str(path.resolve()))


# Re-exported: the trained-module player lives in its own module.
from agents.rllib.module_policy import ModulePolicy  # noqa: E402, F401

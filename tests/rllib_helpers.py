"""An RLModule inside a real RLlib EnvRunner on a classic queue task, and the check that
the actions it sampled are legal and are what a reference policy picks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


def classic_env_runner(task: str, module_class: type, model_config: dict[str, Any]) -> Any:
    """A local ``SingleAgentEnvRunner`` (two envs of ``task``, seed 3) with ``module_class``
    built from ``model_config``; the caller samples from it and stops it."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from agents.rllib.training import ENV_NAME, register_envs

    register_envs()
    cfg = (
        PPOConfig()
        .environment(ENV_NAME, env_config={"task": task}, disable_env_checking=True)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=module_class,
                                               model_config=model_config))
        .debugging(seed=3)
    )  # fmt: skip
    return SingleAgentEnvRunner(config=cfg)


def assert_episodes_follow(episodes: Iterable[Any], act: Callable[[dict], int]) -> int:
    """Every sampled action is legal under its observation's mask and equals
    ``act(observation)``; returns the number of steps checked."""
    steps = 0
    for ep in episodes:
        obs, actions = ep.get_observations(), ep.get_actions()
        for t in range(len(ep)):
            o = {k: np.asarray(v[t]) for k, v in obs.items()}
            assert o["action_mask"][actions[t]] == 1
            assert actions[t] == act(o)
            steps += 1
    return steps


def assert_same_rows(rows: list[dict], ref: list[dict], keys: Iterable[str] | None = None) -> None:
    """``rows`` equal ``ref`` row by row on ``keys`` (default: every key of the reference
    row), exactly; NaN equals NaN (a KPI undefined in both)."""
    assert len(rows) == len(ref)
    for i, (r, q) in enumerate(zip(rows, ref, strict=True)):
        for k in q if keys is None else keys:
            a, b = r[k], q[k]
            same = a == b or (
                isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b)
            )
            assert same, (i, k, a, b, {c: q[c] for c in ("policy", "seed") if c in q})

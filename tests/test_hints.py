"""Residual learning from the role heuristics (agents.rllib.hints): the hinted env,
the hinted slot scorer, and a hinted module in the evaluation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("ray.rllib")

from ray.rllib.core.columns import Columns  # noqa: E402

from agents.ed_evaluation import evaluate_teams, team_context  # noqa: E402
from agents.rllib.hints import HINT_KEY, HintedEdEnv, role_heuristic  # noqa: E402
from agents.rllib.training import ModulePolicy  # noqa: E402
from envs.ed.config import AGENTS  # noqa: E402
from envs.ed_triage_v0 import EdTriageParallelEnv  # noqa: E402
from tests.ed_helpers import slot_scorers  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_hints_are_the_role_heuristics_actions():
    env = HintedEdEnv(EdTriageParallelEnv("mass_casualty", normaliser="static"))
    ref = EdTriageParallelEnv("mass_casualty", normaliser="static")
    heur = {a: role_heuristic(a, team_context(ref)) for a in AGENTS}
    obs, _ = env.reset(seed=5)
    ref_obs, _ = ref.reset(seed=5)
    for h in heur.values():
        h.reset(5)
    steps = 0
    while env.agents:
        for a in AGENTS:
            assert env.observation_space(a).contains(obs[a])
            hint = obs[a][HINT_KEY]
            assert hint.sum() == 1.0
            action = int(hint.argmax())
            assert action == heur[a].act(ref_obs[a])
            assert obs[a]["action_mask"][action] == 1  # a hint is always legal
            np.testing.assert_array_equal(obs[a]["observation"], ref_obs[a]["observation"])
        actions = {a: int(obs[a][HINT_KEY].argmax()) for a in env.agents}
        obs, rewards, *_ = env.step(actions)
        ref_obs, ref_rewards, *_ = ref.step(actions)
        assert rewards == ref_rewards
        steps += 1
    assert steps > 30


def test_hinted_scorer_adds_the_weighted_hint_to_its_logits():
    env = HintedEdEnv(EdTriageParallelEnv("dynamic_queue", normaliser="static"))
    obs, _ = env.reset(seed=2)
    mods = slot_scorers("dynamic_queue", hints=True, hint_weight=4.0)
    a = "consultant"
    batch = {Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs[a].items()}}
    with torch.no_grad():
        with_w = mods[a].forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        mods[a].hint_weight.data.fill_(0.0)
        without = mods[a].forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    hint = torch.as_tensor(obs[a][HINT_KEY])
    legal = torch.as_tensor(obs[a]["action_mask"]).bool()
    diff = (with_w - without)[0]
    torch.testing.assert_close(diff[legal], (4.0 * hint)[legal])


def test_a_dominant_hint_weight_plays_exactly_the_heuristic_team():
    """Plumbing check for evaluation: bind (context → presentations), reset and the
    hint computed in ModulePolicy must reproduce the heuristic team's episodes."""
    task = "mass_casualty"
    mods = slot_scorers(task, hints=True, hint_weight=1e4)
    extra = {"ppo": {a: ModulePolicy(mods[a], name="ppo", agent=a) for a in AGENTS}}
    teams = {"ppo": "nurse=ppo,consultant=ppo,pharmacist=ppo", "heuristic": None}
    rows = evaluate_teams(task, teams, [10_000, 10_001, 10_002], extra=extra)
    by = {(r["policy"], r["seed"]): r for r in rows}
    for seed in (10_000, 10_001, 10_002):
        assert by["ppo", seed]["episode_return"] == by["heuristic", seed]["episode_return"]
        assert by["ppo", seed]["score"] == by["heuristic", seed]["score"]


def test_hinted_module_needs_its_agent_and_a_bound_env():
    env = HintedEdEnv(EdTriageParallelEnv("basic_triage", normaliser="static"))
    mods = slot_scorers("basic_triage", hints=True)
    with pytest.raises(ValueError, match="agent"):
        ModulePolicy(mods["consultant"])
    p = ModulePolicy(mods["consultant"], agent="consultant")
    obs, _ = env.reset(seed=0)
    plain = {k: v for k, v in obs["consultant"].items() if k != HINT_KEY}
    with pytest.raises(RuntimeError, match="bind"):
        p.act(plain)

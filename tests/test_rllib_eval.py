"""Evaluation inside RLlib's own MultiAgentEnvRunner (agents.rllib.evaluation): the
heuristic team, mixed teams, the oracle and slot-scorer modules, on exact seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("ray.rllib")

from ray.rllib.core.columns import Columns  # noqa: E402

from agents.ed_evaluation import evaluate_teams, run_episode, team_context  # noqa: E402
from agents.rllib.evaluation import (  # noqa: E402
    ADVICE_KEY,
    AdvisedEdEnv,
    EpisodeSeedsEnv,
    evaluate_in_env_runner,
    player_specs,
    sample_episodes,
)
from agents.rllib.hints import HINT_KEY  # noqa: E402
from envs.ed.config import AGENTS  # noqa: E402
from envs.ed_triage_v0 import EdTriageParallelEnv  # noqa: E402
from tests.ed_helpers import slot_scorers  # noqa: E402

SEEDS = [10_002, 10_000, 10_001]  # not sorted: the order is part of the contract
CORE = ("score", "episode_return", "served", "missed_emergencies", "oracle_value",
        "pct_of_oracle", "parallel_steps", "serve_reward", "oracle_score", "normalised",
        "random_serve_reward", "grader_score", "oracle_grader_score")  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _by_seed(rows: list[dict]) -> dict[int, dict]:
    return {r["seed"]: r for r in rows}


def test_v1_rows_in_the_env_runner_equal_the_loop():
    # v1's score is the share of the bound; the grader travels as grader_score.
    rows = evaluate_in_env_runner("mass_casualty", {"heuristic": None}, SEEDS, version="v1")
    ref = _by_seed(evaluate_teams("mass_casualty", {"heuristic": None}, SEEDS, version="v1"))
    for r in rows:
        assert all(r[k] == ref[r["seed"]][k] for k in CORE), r["seed"]
        assert r["score"] == pytest.approx(r["serve_reward"] / r["oracle_value"], abs=1e-9)
        assert r["oracle_score"] == pytest.approx(1.0, abs=1e-9) != r["oracle_grader_score"]


@pytest.mark.parametrize("task", ["mass_casualty", "basic_triage"])
def test_heuristic_team_in_the_env_runner_equals_the_loop(task):
    rows = evaluate_in_env_runner(task, {"heuristic": None}, SEEDS)
    assert [r["seed"] for r in rows] == SEEDS
    ref = _by_seed(evaluate_teams(task, {"heuristic": None}, SEEDS))
    for r in rows:
        q = ref[r["seed"]]
        for k in CORE:
            assert r[k] == q[k], (k, r["seed"])
        assert r["policy"] == q["policy"] == "heuristic"
        assert all(r[f"policy_{a}"] == q[f"policy_{a}"] for a in AGENTS)
        # RLlib's own accounting of the episode agrees with the env's (team reward).
        assert r["rllib_return_consultant"] == pytest.approx(r["episode_return"])
        assert r["illegal_actions"] == 0 and r["evaluator"] == "rllib_env_runner"
    assert set(ref[SEEDS[0]]) <= set(rows[0])  # every column of the loop's rows


def test_mixed_team_with_a_policy_module_is_legal_and_sane():
    from agents.rllib.evaluation import HintModule
    from agents.rllib.modules import PolicyModule

    specs, _, _ = player_specs("consultant=random")
    assert specs["consultant"].module_class is PolicyModule
    assert specs["triage_nurse"].module_class is HintModule
    task = "mass_casualty"
    seeds = [3, 4, 5]
    episodes = sample_episodes(task, "consultant=random", seeds)
    rows = evaluate_in_env_runner(task, {"random consultant": "consultant=random"}, seeds)
    assert [r["seed"] for r in rows] == seeds
    for r in rows:
        assert r["policy_consultant"] == "random" and r["policy_triage_nurse"] == "ed_nurse"
        assert 0.0 <= r["score"] <= 1.0
        assert 0 <= r["served"] and r["oracle_value"] > 0
        assert 0.0 <= r["pct_of_oracle"] <= 100.0 + 1e-9
        assert r["illegal_actions"] == 0
    for ep in episodes:
        for a in AGENTS:
            sa = ep.agent_episodes[a]
            obs, actions, infos = sa.get_observations(), sa.get_actions(), sa.get_infos()
            masks = obs["action_mask"]
            assert all(masks[t][actions[t]] == 1 for t in range(len(sa)))
            assert not any(i.get("illegal_action") for i in infos)


def test_dominant_hint_slot_scorer_in_the_env_runner_is_the_heuristic_team():
    """The module path: a hinted SlotScorerModule (weights handed to the runner's
    module by set_state), greedy, reproduces the heuristic team exactly."""
    task = "mass_casualty"
    mods = slot_scorers(task, hints=True, hint_weight=1e4)
    teams = {"ppo": "nurse=ppo,consultant=ppo,pharmacist=ppo", "heuristic": None}
    rows = evaluate_in_env_runner(task, teams, SEEDS, modules={"ppo": mods})
    by = {(r["policy"], r["seed"]): r for r in rows}
    for seed in SEEDS:
        for k in CORE:
            assert by["ppo", seed][k] == by["heuristic", seed][k], (k, seed)
    assert by["ppo", SEEDS[0]]["policy_consultant"] == "ppo"


def test_unhinted_module_ignores_the_hint_and_acts_greedily():
    """A module trained without hints runs in the (hinted) eval env, and explore=False
    plays the argmax of its masked logits, recomputed here from the episode."""
    task = "basic_triage"
    mods = slot_scorers(task, hints=False)
    specs, states, _ = player_specs("consultant=ppo", {"ppo": mods})
    assert set(states) == {"consultant"} and not specs["consultant"].model_config["hints"]
    (ep,) = sample_episodes(task, "consultant=ppo", [7], modules={"ppo": mods})
    sa = ep.agent_episodes["consultant"]
    obs, actions = sa.get_observations(), np.asarray(sa.get_actions())
    assert HINT_KEY in obs
    n = len(sa)
    batch = {Columns.OBS: {k: torch.as_tensor(np.asarray(obs[k])[:n])
                           for k in ("observation", "action_mask")}}  # fmt: skip
    with torch.no_grad():
        logits = mods["consultant"].forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), actions)


def test_oracle_team_replays_the_loop_oracle():
    from agents.oracle_ed import EdOracleTeam

    task = "basic_triage"
    seeds = [0, 7]
    rows = evaluate_in_env_runner(task, {"oracle": "nurse=oracle,consultant=oracle,"
                                                   "pharmacist=oracle"}, seeds)  # fmt: skip
    env = EdTriageParallelEnv(task)
    for r, seed in zip(rows, seeds, strict=True):
        info = run_episode(env, EdOracleTeam(team_context(env)).policies(), seed)
        assert r["seed"] == seed
        assert r["score"] == info["score"] and r["episode_return"] == info["episode_return"]
        assert r["serve_reward"] == pytest.approx(r["oracle_value"])
        assert r["pct_of_oracle"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="whole team"):
        player_specs("consultant=oracle")


def test_seeded_env_plays_its_list_in_order_then_stops():
    env = EpisodeSeedsEnv(AdvisedEdEnv(EdTriageParallelEnv("basic_triage"), "oracle"), [5, 2])
    played = []
    for _ in range(2):
        obs, infos = env.reset(seed=123)  # RLlib's seed is ignored
        played.append(infos["consultant"]["episode_seed"])
        assert obs["consultant"][ADVICE_KEY].sum() == 1.0
        assert obs["consultant"][HINT_KEY].sum() == 1.0
    assert played == [5, 2]
    with pytest.raises(RuntimeError, match="seeds played"):
        env.reset()


@pytest.mark.slow
def test_modules_loaded_from_a_training_run_dir(tmp_path):
    import ray

    from agents.rllib.evaluation import trained_modules
    from agents.rllib.training import TrainSettings, train

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        s = TrainSettings(task="basic_triage", ruleset="ed", train_iters=1, num_env_runners=0,
                          envs_per_runner=1, train_batch_size=200, minibatch_size=100,
                          num_epochs=1, width=16, hints=True)  # fmt: skip
        train(s, tmp_path)
    finally:
        ray.shutdown()
    mods = trained_modules(tmp_path)
    rows = evaluate_in_env_runner("basic_triage", {"ppo": "nurse=ppo,consultant=ppo,"
                                                          "pharmacist=ppo"}, [1, 2],
                                  modules={"ppo": mods})  # fmt: skip
    assert [r["seed"] for r in rows] == [1, 2]
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)


def test_seed_shards_in_ray_workers_give_the_same_rows():
    import ray

    task = "basic_triage"
    seeds = [4, 1, 9]
    local = evaluate_in_env_runner(task, {"heuristic": None}, seeds)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = evaluate_in_env_runner(task, {"heuristic": None}, seeds, num_workers=2)
    finally:
        if started:
            ray.shutdown()
    assert [r["seed"] for r in remote] == seeds
    for a, b in zip(local, remote, strict=True):
        assert {k: a[k] for k in CORE} == {k: b[k] for k in CORE}

"""PettingZoo API and seed tests of ``envs.ed_triage_v0`` on every task, and the
env-level contract (final observations, reward modes, infos)."""

from __future__ import annotations

import warnings

import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from agents.ed_evaluation import run_episode, team_context
from agents.roles import make_team
from envs import ed_triage_v0
from envs.ed.config import AGENTS

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty", "generated")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PettingZoo's style hints (agent names, Dict obs)
        yield


@pytest.mark.parametrize("task", TASKS)
def test_parallel_api(task):
    parallel_api_test(ed_triage_v0.parallel_env(task=task, normaliser="static"), num_cycles=400)


@pytest.mark.parametrize("task", TASKS)
def test_aec_api(task):
    api_test(ed_triage_v0.env(task=task, normaliser="static"), num_cycles=200)


@pytest.mark.parametrize("task", TASKS)
def test_seed_tests(task):
    parallel_seed_test(lambda: ed_triage_v0.parallel_env(task=task, normaliser="static"))
    seed_test(lambda: ed_triage_v0.env(task=task, normaliser="static"))


def test_equal_seeds_equal_episodes_and_different_seeds_differ():
    def trace(seed):
        env = ed_triage_v0.parallel_env(task="dynamic_queue")
        team = make_team("consultant=random", team_context(env), seed=3)
        info = run_episode(env, team, seed)
        pres = [p.complaint for p in env.state.scenario.presentations]
        return info["score"], info["episode_return"], pres

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_final_step_gives_every_agent_obs_reward_and_summary():
    env = ed_triage_v0.parallel_env(task="basic_triage")
    obs, infos = env.reset(seed=1)
    assert set(obs) == set(infos) == set(AGENTS)
    while env.agents:
        acts = {a: len(obs[a]["action_mask"]) - 1 for a in env.agents}  # END / pass
        obs, rew, term, trunc, infos = env.step(acts)
    assert set(obs) == set(rew) == set(term) == set(AGENTS) and all(term.values())
    info = infos["triage_nurse"]
    assert 0.0 <= info["score"] <= 1.0 and info["oracle_value"] > 0
    assert info["kpis"]["left_unserved"] == 6 and info["kpis"]["mean_tt_1"] is None
    assert set(info["reward_terms"]) == {"serve", "waiting_immediate", "under_triage",
                                         "idle_triage", "illegal_action"}  # fmt: skip
    assert env.state.step == env.task.max_steps


def test_reward_modes():
    rets = {}
    for mode in ("team", "individual"):
        env = ed_triage_v0.parallel_env(task="mass_casualty", reward_mode=mode)
        team = make_team("pharmacist=random", team_context(env), seed=0)
        info_by_agent = {}
        obs, _ = env.reset(seed=4)
        while env.agents:
            obs, rew, _, _, infos = env.step({a: team[a].act(obs[a]) for a in env.agents})
            if mode == "team":
                assert len(set(rew.values())) == 1
            info_by_agent = infos
        rets[mode] = {a: info_by_agent[a]["episode_return"] for a in AGENTS}
    # A random pharmacist's adverse events are charged to the pharmacist alone.
    assert len(set(rets["team"].values())) == 1
    assert rets["individual"]["pharmacist"] < rets["individual"]["consultant"]


def test_text_charts_and_presentation_access():
    env = ed_triage_v0.parallel_env(task="basic_triage", text_observations=True)
    obs, infos = env.reset(seed=0)
    assert "Complaint:" in infos["triage_nurse"]["charts"][0]
    assert "Complaint:" not in infos["consultant"]["charts"][0]
    assert env.presentation(0) is env.state.scenario.presentations[0]
    assert env.presentation(99) is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        ed_triage_v0.parallel_env(ruleset="classic")
    with pytest.raises(ValueError):
        ed_triage_v0.parallel_env(reward_mode="selfish")

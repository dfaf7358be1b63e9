"""The single-agent Gymnasium ``ed`` env: the consultant, nurse and pharmacist played by
heuristics (``envs.gym_ed``)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from agents.ed_evaluation import run_episode, team_context
from agents.roles import EdConsultant, make_team
from envs import ed_triage_v0
from envs.gym_ed import EdConsultantEnv
from envs.gym_queue import QueueEnv, make_queue_env


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def play(env: gym.Env, seed: int | None, policy=None) -> tuple[float, dict, int]:
    obs, info = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        mask = obs["action_mask"]
        assert mask[:-1].any(), "every observation offers a real decision"
        a = policy.act(obs) if policy else int(np.flatnonzero(mask)[0])
        obs, r, done, trunc, info = env.step(a)
        assert not trunc
        total += r
        steps += 1
    return total, info, steps


@pytest.mark.parametrize("env_id", list(envs.ED_GYM_IDS))
def test_check_env(env_id):
    env = gym.make(env_id, normaliser="static")
    assert isinstance(env.unwrapped, EdConsultantEnv)
    check_env(env.unwrapped, skip_render_check=True)


def test_check_env_generated():
    check_env(EdConsultantEnv(task="generated", normaliser="static"), skip_render_check=True)


def test_ruleset_dispatch_keeps_classic():
    assert isinstance(gym.make("edmarl/MassCasualty-v0").unwrapped, QueueEnv)
    ed = gym.make("edmarl/MassCasualty-v0", ruleset="ed", nurse="random").unwrapped
    assert isinstance(ed, EdConsultantEnv) and ed.task.name == "mass_casualty"
    assert isinstance(make_queue_env("basic_triage"), QueueEnv)
    with pytest.raises(ValueError, match="ruleset"):
        make_queue_env("basic_triage", ruleset="nope")
    with pytest.raises(ValueError, match="ruleset"):
        EdConsultantEnv(ruleset="classic")


def test_spaces_are_the_consultants():
    env = EdConsultantEnv(task="dynamic_queue")
    pz = ed_triage_v0.parallel_env(task="dynamic_queue")
    assert env.action_space == pz.action_space("consultant")
    assert env.observation_space == pz.observation_space("consultant")


def test_episode_matches_the_parallel_env_with_the_same_team():
    """The heuristic consultant in the gym env = the heuristic team in the parallel env:
    same score and the same summed consultant reward."""
    env = EdConsultantEnv(task="mass_casualty")
    total, info, steps = play(env, 4, EdConsultant())
    pz = ed_triage_v0.parallel_env(task="mass_casualty")
    ref = run_episode(pz, make_team(None, team_context(pz)), 4)
    assert info["score"] == ref["score"] and set(info["grader"]) == set(ref["grader"])
    assert total == pytest.approx(ref["episode_return"]) == pytest.approx(info["episode_return"])
    assert steps < ref["parallel_steps"]  # forced passes are played automatically
    assert info["kpis"]["left_unserved"] == ref["kpis"]["left_unserved"]


def test_equal_seeds_equal_episodes_with_random_heuristics():
    def trace(seed):
        env = EdConsultantEnv(task="dynamic_queue", nurse="random", pharmacist="random",
                              normaliser="static")  # fmt: skip
        return play(env, seed)[:2]

    a, b, c = trace(2), trace(2), trace(3)
    assert a[0] == b[0] and a[1]["score"] == b[1]["score"]
    assert (a[0], a[1]["score"]) != (c[0], c[1]["score"])


def test_nurse_heuristic_matters():
    def score(nurse):
        env = EdConsultantEnv(task="basic_triage", nurse=nurse, normaliser="static")
        return np.mean([play(env, s, EdConsultant())[1]["score"] for s in range(6)])

    assert score("ed_nurse") > score("random")


def test_step_after_end_and_infos():
    env = EdConsultantEnv(task="basic_triage", normaliser="static")
    obs, info = env.reset(seed=1)
    assert info["episode_seed"] == 1 and info["step"] == 0
    obs, r, done, _, info = env.step(len(obs["action_mask"]) - 1)  # END
    assert info["substeps"] >= 1 and info["illegal_action"] is False
    _, _, _, _, info = env.step(99)  # out of range: a counted no-op, not an exception
    assert info["illegal_action"] is True
    while not done:
        obs, r, done, _, info = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
    assert {"score", "grader", "kpis", "episode_return"} <= set(info)
    with pytest.raises(RuntimeError):
        env.step(0)


def test_render_ansi():
    env = gym.make("edmarl/BasicTriageED-v0", render_mode="ansi")
    env.reset(seed=0)
    assert "basic_triage" in env.render()

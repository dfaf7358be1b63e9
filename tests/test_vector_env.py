"""The native vector env plays exactly the scalar env's episodes, batched."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from agents import make_policy
from envs.graders import grade_records
from envs.gym_queue import QueueEnv
from envs.vector_queue import QueueVectorEnv


@pytest.mark.parametrize(("env_id", "task"), list(envs.GYM_IDS.items()))
def test_vector_env_equals_scalar_env_step_by_step(env_id, task):
    B = 16
    venv = gym.make_vec(env_id, num_envs=B, vectorization_mode="vector_entry_point")
    assert isinstance(venv, QueueVectorEnv)
    obs, info = venv.reset(seed=100)
    assert list(info["episode_seed"]) == list(range(100, 100 + B))
    scalar = [QueueEnv(task) for _ in range(B)]
    for b, env in enumerate(scalar):
        o, _ = env.reset(seed=100 + b)
        assert np.array_equal(o["observation"], obs["observation"][b])
    rng = np.random.default_rng(0)
    pending_reset = np.zeros(B, bool)
    finished = 0
    for _ in range(3 * get_steps(task) + 5):
        acts = np.array([
            int(rng.integers(venv.n_slots + 1)) if rng.random() < 0.3
            else int(rng.choice(np.flatnonzero(m))) for m in obs["action_mask"]
        ])  # fmt: skip
        obs, r, term, trunc, info = venv.step(acts)
        assert not trunc.any()
        for b, env in enumerate(scalar):
            if pending_reset[b]:  # next-step autoreset: action ignored, new episode
                o, _ = env.reset(seed=int(info["episode_seed"][b]))
                assert r[b] == 0.0 and not term[b]
                pending_reset[b] = False
            else:
                o, sr, st, _, si = env.step(int(acts[b]))
                assert sr == r[b] and st == term[b]
                if st:
                    assert info["_score"][b] and si["score"] == info["score"][b]
                    assert si["episode_return"] == info["episode_return"][b]
                    finished += 1
                    pending_reset[b] = True
            assert np.array_equal(o["observation"], obs["observation"][b])
            assert np.array_equal(o["action_mask"], obs["action_mask"][b])
    assert finished >= 2 * B


def get_steps(task: str) -> int:
    return envs.get_task(task).max_steps


def test_batch_scores_equal_scalar_graders_on_many_episodes():
    for task in envs.TASKS:
        venv = QueueVectorEnv(64, task)
        policy = make_policy("random", seed=1)
        obs, _ = venv.reset(seed=7)
        scalar_scores = []
        for _ in range(envs.get_task(task).max_steps):
            obs, r, term, _, info = venv.step(policy.act_vec(obs))
        assert term.all()
        for b in range(64):
            g = grade_records(venv.task, venv.served_records(b), int(venv.missed_emergencies[b]))
            scalar_scores.append(g["score"])
        assert info["score"].tolist() == scalar_scores


def test_unseeded_vector_env_plays_the_schedule_as_written():
    venv = QueueVectorEnv(2, "basic_triage")
    obs, info = venv.reset()
    assert list(info["episode_seed"]) == [None, None]
    policy = make_policy("severity_greedy")
    for _ in range(10):
        obs, r, term, _, info = venv.step(policy.act_vec(obs))
    assert info["score"].tolist() == [0.8149, 0.8149]


def test_vector_env_rejects_bad_actions():
    venv = QueueVectorEnv(3, "basic_triage")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="expected 3 actions"):
        venv.step([0, 1])
    with pytest.raises(ValueError, match="0..6"):
        venv.step([0, 1, 9])
    with pytest.raises(ValueError, match="num_envs"):
        QueueVectorEnv(0)
    with pytest.raises(ValueError, match="needs 3 seeds"):
        venv.reset(seed=[1, 2])


def test_heuristics_act_vec_equals_act():
    venv = QueueVectorEnv(32, "mass_casualty")
    obs, _ = venv.reset(seed=3)
    for name in ["fifo", "severity_greedy", "deterioration_greedy"]:
        p = make_policy(name)
        batched = p.act_vec(obs)
        single = [p.act({k: v[i] for k, v in obs.items()}) for i in range(32)]
        assert batched.tolist() == single

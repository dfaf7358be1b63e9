"""Gymnasium queue envs: checker, determinism, encoding, invalid actions, info."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.observation import COUNTDOWN, REPORTED, encode, patients
from envs.seeding import EPISODE_SEED_BOUND
from envs.tool_api import ToolSession

IDS = list(envs.GYM_IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_env_checker_passes_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)
    assert env.spec.id == env_id


def _rollout(env, seed, policy_seed, n_random=0.3):
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs["observation"].copy()]
    done = False
    while not done:
        legal = np.flatnonzero(obs["action_mask"])
        explore = rng.random() < n_random
        a = int(rng.integers(env.action_space.n)) if explore else int(rng.choice(legal))
        obs, r, done, trunc, info = env.step(a)
        assert not trunc
        trace.append((a, r, obs["observation"].copy(), obs["action_mask"].copy()))
    return trace, info


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_episode(env_id):
    t1, i1 = _rollout(gym.make(env_id), 5, 1)
    t2, i2 = _rollout(gym.make(env_id), 5, 1)
    assert i1["grader"] == i2["grader"]
    assert len(t1) == len(t2)
    for a, b in zip(t1[1:], t2[1:], strict=True):
        assert a[0] == b[0] and a[1] == b[1]
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])


@pytest.mark.parametrize("env_id", IDS)
def test_fast_encoder_equals_reference_encoder(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    for ep in range(60):
        obs, _ = env.reset(seed=ep if ep % 5 else None)
        while True:
            ref_obs, ref_mask = encode(env.state, env.n_slots)
            assert np.array_equal(obs["observation"], ref_obs)
            assert np.array_equal(obs["action_mask"], ref_mask)
            assert env.observation_space.contains(obs)
            if env.state.done:
                break
            legal = np.flatnonzero(obs["action_mask"])
            a = int(rng.integers(env.n_slots + 1)) if rng.random() < 0.3 else int(rng.choice(legal))
            obs, *_ = env.step(a)


def test_encoder_tables_are_per_episode_and_observations_are_fresh():
    """Each episode writes serves into its own tables (built from shared read-only
    per-patient blocks); every step hands out new, writable arrays, so a caller
    editing one cannot alter the next step or the next episode."""
    from envs.classic.observation import _BLOCKS

    env = gym.make("edmarl/BasicTriage-v0").unwrapped
    obs, _ = env.reset(options={"episode_seed": None})
    first_rows = env._enc._rows
    shared = [b for per_shape in _BLOCKS.values() for pair in per_shape.values() for b in pair]
    assert shared and not any(b.flags.writeable for b in shared)
    serve = int(np.flatnonzero(obs["action_mask"])[0])
    obs["observation"][:] = -1.0
    obs["action_mask"][:] = 0
    obs, *_ = env.step(serve)
    assert np.array_equal(obs["observation"], encode(env.state, env.n_slots)[0])
    obs2, _ = env.reset(options={"episode_seed": None})
    assert env._enc._rows is not first_rows and env._enc._rows.flags.writeable
    assert np.array_equal(obs2["observation"], encode(env.state, env.n_slots)[0])
    assert np.array_equal(obs2["action_mask"], encode(env.state, env.n_slots)[1])
    assert obs2["observation"].flags.writeable and obs2["action_mask"].flags.writeable


def test_observation_hides_true_severity():
    env = gym.make("edmarl/BasicTriage-v0")
    obs, _ = env.reset()  # never seeded: the schedule as written
    rows = patients(obs["observation"], 6)
    assert rows[0, REPORTED] == 4  # P001: true severity 1, reported 4


def test_countdown_is_visible():
    env = gym.make("edmarl/MassCasualty-v0").unwrapped
    obs, _ = env.reset()
    for _ in range(3):
        obs, *_ = env.step(env.wait_action)
    rows = patients(obs["observation"], env.n_slots)
    assert sorted(rows[:, COUNTDOWN][rows[:, COUNTDOWN] > 0].tolist()) == [1.0, 2.0]


def test_invalid_actions_follow_classic_semantics():
    env = gym.make("edmarl/MassCasualty-v0").unwrapped
    obs, _ = env.reset()
    assert not obs["action_mask"][20]  # P021 not arrived yet
    obs, r, *_, info = env.step(20)
    assert (r, info["invalid_action"], env.state.step) == (-0.1, "unknown_patient", 1)
    obs, r, *_ = env.step(0)  # P001 takes the ICU bed
    for _ in range(10):
        obs, *_ = env.step(env.wait_action)
    icu_slot = next(p.slot for p in env.state.scenario.patients if p.patient_id == "P012")
    assert obs["action_mask"][icu_slot] == 0
    step = env.state.step
    obs, r, *_, info = env.step(icu_slot)
    assert (r, info["invalid_action"], env.state.step) == (0.0, "blocked", step)
    with pytest.raises(ValueError, match="out of range"):
        env.step(99)
    with pytest.raises(ValueError, match="must be an int"):
        env.step("serve")


def test_step_before_reset_and_after_end():
    env = envs.QueueEnv("basic_triage")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=1)
    for _ in range(10):
        _, _, done, _, info = env.step(env.wait_action)
    assert done and info["score"] == 0.001 and "grader" in info
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.wait_action)


def test_info_score_equals_tool_session_on_same_actions():
    env = gym.make("edmarl/DynamicQueue-v0").unwrapped
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=77)
    s = ToolSession()
    s.start_task("dynamic_queue", seed=77)
    ids = [p.patient_id for p in env.state.scenario.patients]
    done = False
    while not done:
        a = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        obs, r, done, _, info = env.step(a)
        out = s.wait() if a == env.wait_action else s.serve_patient(ids[a])
        assert out["step_reward"] == round(r, 4)
    final = s.finalize_episode()
    assert info["score"] == final["score"]
    assert info["grader"]["fairness_score"] == final["fairness_score"]


def test_reset_seeding_semantics():
    env = gym.make("edmarl/DynamicQueue-v0").unwrapped
    _, info = env.reset()
    assert info["episode_seed"] is None  # never seeded: schedule as written
    _, info = env.reset(seed=3)
    assert info["episode_seed"] == 3
    _, a = env.reset()
    _, b = env.reset()
    assert a["episode_seed"] != b["episode_seed"]
    env2 = gym.make("edmarl/DynamicQueue-v0").unwrapped
    env2.reset(seed=3)
    assert env2.reset()[1]["episode_seed"] == a["episode_seed"]  # reproducible stream
    _, info = env.reset(options={"episode_seed": None})
    assert info["episode_seed"] is None


def test_deferred_generator_is_gymnasiums():
    """reset(seed) builds the generator on first read: same state and seed as Gymnasium's
    super().reset(seed) would give, and a later unseeded reset draws from it."""
    env = gym.make("edmarl/MassCasualty-v0").unwrapped
    ref = gym.utils.seeding.np_random(7)[0]
    env.reset(seed=7)
    assert env.np_random_seed == 7
    assert env.np_random.bit_generator.state == ref.bit_generator.state
    env.reset(seed=3)
    env.reset(seed=7)
    _, info = env.reset()
    assert info["episode_seed"] == int(ref.integers(EPISODE_SEED_BOUND))
    env.np_random = np.random.default_rng(1)  # a set generator wins over a pending seed
    env.reset()
    assert env.np_random_seed == -1


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown task"):
        envs.QueueEnv("nope")
    with pytest.raises(ValueError, match="ruleset 'ed'"):
        envs.QueueEnv("basic_triage", ruleset="ed")  # the classic class; ed is envs.gym_ed
    with pytest.raises(ValueError, match="render_mode"):
        envs.QueueEnv("basic_triage", render_mode="human")


def test_render_ansi():
    env = gym.make("edmarl/MassCasualty-v0", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "Mass Casualty" in text and "P001" in text


def test_seed_range_keeps_training_seeds_apart():
    env = envs.QueueEnv("dynamic_queue", seed_range=(0, 100))
    seeds = {env.reset(seed=s)[1]["episode_seed"] for s in (5, 105, 12345)}
    assert seeds == {5, 45}
    drawn = [env.reset()[1]["episode_seed"] for _ in range(50)]
    assert all(0 <= s < 100 for s in drawn)
    with pytest.raises(ValueError, match="seed_range"):
        envs.QueueEnv("dynamic_queue", seed_range=(5, 5))


@pytest.mark.parametrize("env_id", list(envs.GYM_IDS))
def test_replayed_seeds_play_what_a_fresh_env_plays(env_id):
    """Resets reuse the env's encoder and ``random.Random``, remember each seed's drawn
    schedule (LRU) and keep schedules' step-0 states: replaying seeds in another order,
    past the LRU's size and after other episodes, gives every observation, reward and
    info a fresh env gives (which draws and builds everything anew)."""
    from envs.classic import gym_env

    def play(env: gym.Env, seed: int) -> list:
        out = []
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            out.append((obs["observation"].tolist(), obs["action_mask"].tolist(), info))
            legal = np.flatnonzero(obs["action_mask"])
            obs, r, done, _, info = env.step(int(rng.choice(legal)))
            out.append(r)
        out.append((obs["observation"].tolist(), info))
        return out

    env = gym.make(env_id)
    seeds = [3, 70, 3, 5, 70, *range(100, 100 + gym_env.SEED_CACHE_SIZE), 3, 5, 101]
    for seed in seeds:
        assert play(env, seed) == play(gym.make(env_id), seed), seed
    assert len(env.unwrapped._by_seed) == gym_env.SEED_CACHE_SIZE
    assert list(env.unwrapped._by_seed)[-3:] == [3, 5, 101]  # most recent last


def test_state_copy_copies_every_field():
    import dataclasses

    from envs.classic import dynamics
    from envs.scenario import build_scenario
    from envs.tasks import get_task

    state = dynamics.initial_state(build_scenario(get_task("mass_casualty"), 9))
    dynamics.serve(state, state.queue[0])
    dynamics.wait(state)
    copy = state.copy()
    for f in dataclasses.fields(state):
        a, b = getattr(state, f.name), getattr(copy, f.name)
        assert a == b, f.name
        if isinstance(a, list):
            assert a is not b, f.name  # independent
    other = build_scenario(get_task("mass_casualty"), 10)
    assert state.copy(other).scenario is other


def test_perturb_schedule_with_a_reused_random_draws_the_same():
    import random

    from envs.scenario import perturb_schedule
    from envs.tasks import get_task

    rng = random.Random()
    for task in ("basic_triage", "mass_casualty"):
        for seed in (0, 1, 2**40, 7):
            assert perturb_schedule(get_task(task), seed, rng) == perturb_schedule(
                get_task(task), seed
            )

"""Heuristics reproduce Queue Doctor's published unseeded figures; all act legally."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from agents import POLICIES, make_policy
from agents.base import Policy, UnknownPolicyError

REFERENCE = {  # Queue Doctor README / issue: unseeded scores per task
    "severity_greedy": (0.8149, 0.6081, 0.2890),
    "fifo": (0.999, 0.6303, 0.3041),
}


def play(policy_name: str, env_id: str, seed: int | None = None, **kw) -> dict:
    env = gym.make(env_id)
    policy = make_policy(policy_name, **kw)
    policy.reset(seed)
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        a = policy.act(obs)
        assert obs["action_mask"][a] == 1, (policy_name, a)
        obs, _, done, _, info = env.step(a)
        assert "invalid_action" not in info
    return info


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_figures_without_seed(name):
    got = tuple(play(name, eid)["score"] for eid in envs.GYM_IDS)
    assert got == REFERENCE[name]


def test_highest_severity_is_severity_greedy():
    assert POLICIES["highest_severity"] is POLICIES["severity_greedy"]


@pytest.mark.parametrize("name", ["random", "fifo", "severity_greedy", "deterioration_greedy"])
@pytest.mark.parametrize("env_id", list(envs.GYM_IDS))
def test_every_heuristic_acts_legally(name, env_id):
    for seed in range(5):
        info = play(name, env_id, seed)
        assert 0.0 <= info["score"] <= 0.999


def test_random_policy_is_seeded():
    a = play("random", "edmarl/DynamicQueue-v0", seed=4)
    b = play("random", "edmarl/DynamicQueue-v0", seed=4)
    assert a["grader"] == b["grader"]


def _obs(rows: list[list[float]]) -> dict:
    n = len(rows)
    flat = np.zeros(n * 8 + 7, np.float32)
    flat[: n * 8] = np.asarray(rows, np.float32).ravel()
    mask = np.ones(n + 1, np.int8)
    mask[:n] = [r[0] * r[7] for r in rows]
    return {"observation": flat, "action_mask": mask}


def test_deterioration_greedy_serves_before_deterioration():
    # present, reported, wait, condition, countdown, icu, specialist, can_serve
    obs = _obs([[1, 2, 3, 0, 0, 0, 0, 1],   # reported 2, stable
                [1, 3, 1, 0, 1, 0, 0, 1],   # reported 3, worsens next step
                [1, 3, 5, 0, 0, 0, 0, 1]])  # fmt: skip
    assert make_policy("severity_greedy").act(obs) == 0
    assert make_policy("deterioration_greedy").act(obs) == 1
    assert make_policy("fifo").act(obs) == 0
    # A countdown beyond the horizon changes nothing.
    obs = _obs([[1, 2, 3, 0, 0, 0, 0, 1], [1, 3, 1, 0, 3, 0, 0, 1]])
    assert make_policy("deterioration_greedy").act(obs) == 0


def test_severity_greedy_ties_by_wait_then_arrival():
    obs = _obs(
        [
            [1, 2, 1, 0, 0, 0, 0, 1],
            [1, 2, 4, 0, 0, 0, 0, 1],
            [1, 2, 4, 0, 0, 0, 0, 1],
            [1, 1, 0, 0, 0, 0, 0, 0],
        ]
    )  # fmt: skip  (the reported-1 one is blocked)
    assert make_policy("severity_greedy").act(obs) == 1


def test_wait_only_when_nobody_can_be_served():
    n = 3
    obs = {"observation": np.zeros(n * 8 + 7, np.float32),
           "action_mask": np.array([0, 0, 0, 1], np.int8)}  # fmt: skip
    for name in ["fifo", "severity_greedy", "deterioration_greedy", "random"]:
        assert make_policy(name).act(obs) == n


def test_unknown_policy_lists_choices():
    with pytest.raises(UnknownPolicyError, match="severity_greedy"):
        make_policy("greedy")


def _check_fast_path(
    env: gym.Env, fast: Policy, ref: Policy, episodes: int, mover: Policy | None = None
) -> dict:
    """Plays seeds 0..episodes-1 asserting ``fast.act(obs) == ref.choose(obs)`` (act()'s
    one-observation fast path against the batched array code) at every step; moves with
    ``mover.act(obs)``, or with the checked pick when ``mover`` is None. Returns the last
    observation."""
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        done = False
        while not done:
            pick = fast.act(obs)
            assert pick == int(ref.choose(obs))
            obs, _, done, _, _ = env.step(pick if mover is None else mover.act(obs))
    return obs


@pytest.mark.parametrize("env_id", list(envs.GYM_IDS))
def test_severity_greedy_single_observation_path_equals_array_code(env_id):
    """act()'s one-observation fast path picks what the batched array code picks, on
    states reached by random play (nobody servable, ties, ICU blocks included)."""
    env = gym.make(env_id)
    greedy, rnd = make_policy("severity_greedy"), make_policy("random", seed=1)
    obs = _check_fast_path(env, greedy, greedy, episodes=40, mover=rnd)
    blocked = {"observation": obs["observation"].copy(), "action_mask": obs["action_mask"] * 0}
    n = env.unwrapped.wait_action
    assert greedy.act(blocked) == int(greedy.choose(blocked)) == n  # nobody servable: wait


def test_random_single_observation_path_equals_array_code():
    """Two random policies on one seed: act()'s fast path and choose() draw and pick
    the same actions, step after step."""
    env = gym.make("edmarl/MassCasualty-v0")
    fast, ref = make_policy("random", seed=5), make_policy("random", seed=5)
    _check_fast_path(env, fast, ref, episodes=20)


def _reference_random_pick(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """The random policy's definition, one NumPy draw per call: a uniform draw per
    entry, -1 on illegal ones, the first largest wins."""
    noise = np.where(mask != 0, rng.random(mask.shape), -1.0)
    return np.argmax(noise, axis=-1)


def test_random_buffered_draws_are_the_seeded_stream_in_order():
    """act() draws its noise a block at a time; mixed with batched calls (act_vec),
    across block boundaries and a re-seed, the picks are those of drawing each
    observation's noise from the seeded stream in turn."""
    from agents.heuristics import RANDOM_BLOCK

    pol, ref = make_policy("random", seed=11), np.random.default_rng(11)
    masks = np.random.default_rng(0).integers(0, 2, size=(3 * RANDOM_BLOCK, 30)).astype(np.int8)
    masks[:, -1] = 1
    i = 0
    for _ in range(3):
        for _ in range(101):  # 101 × 30 draws: crosses the block size mid-observation
            obs = {"observation": np.zeros(1, np.float32), "action_mask": masks[i]}
            assert pol.act(obs) == int(_reference_random_pick(ref, masks[i]))
            i += 1
        batch = masks[i : i + 7]
        got = pol.act_vec({"observation": np.zeros((7, 1), np.float32), "action_mask": batch})
        assert got.tolist() == _reference_random_pick(ref, batch).tolist()
        i += 7
    pol.reset(seed=3)
    ref = np.random.default_rng(3)
    assert pol.act({"observation": np.zeros(1), "action_mask": masks[0]}) == int(
        _reference_random_pick(ref, masks[0])
    )
    # Nothing legal: argmax's answer (entry 0), as the array code.
    none = np.zeros(5, np.int8)
    assert pol.act({"observation": np.zeros(1), "action_mask": none}) == 0

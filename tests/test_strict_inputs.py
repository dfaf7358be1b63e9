"""Strict inputs: every env refuses non-integer, boolean and non-finite actions, unknown
agent ids and bad seeds with a ValueError naming the expected form, before its state
changes; NumPy integer scalars stay accepted (envs.validation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.ed_triage_v0 import env as aec_env
from envs.ed_triage_v0 import parallel_env
from envs.gym_ed import EdConsultantEnv
from envs.gym_queue import QueueEnv
from envs.nursesim import NurseSimTriageEnv
from envs.tool_api import ToolError, ToolSession
from envs.validation import check_action, check_seed
from envs.vector_queue import QueueVectorEnv

BAD_ACTIONS = [1.9, 1.0, "1", True, False, np.bool_(True), math.inf, -math.inf, math.nan,
               np.float32(2.0), None, [1], np.array([1]), np.array(1.0)]  # fmt: skip
BAD_SEEDS = [-1, -5, True, 1.0, 1.5, "3", math.inf, np.float64(2)]

# Anything that is not an integer scalar (hypothesis draws the rest of the universe).
non_integers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _snapshot(env: QueueEnv) -> tuple:
    return (env.state.step, env.episode_return, env._obs()["observation"].tobytes())


@pytest.mark.parametrize("bad", BAD_ACTIONS, ids=repr)
def test_classic_env_refuses_non_integer_actions(bad):
    env = QueueEnv("basic_triage")
    env.reset(seed=3)
    before = _snapshot(env)
    with pytest.raises(ValueError, match=r"action must be an int in 0\.\.6 .*NumPy integer"):
        env.step(bad)
    assert _snapshot(env) == before  # refused before the state changed


@pytest.mark.parametrize("good", [1, np.int64(1), np.int32(1), np.uint8(1), np.array(1)])
def test_numpy_integer_scalars_stay_accepted(good):
    a, b = QueueEnv("basic_triage"), QueueEnv("basic_triage")
    a.reset(seed=7)
    b.reset(seed=7)
    assert a.step(good)[1] == b.step(1)[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=non_integers)
def test_fuzzed_actions_are_refused_everywhere(bad):
    env = QueueEnv("basic_triage")
    env.reset(seed=1)
    with pytest.raises(ValueError, match="action must be"):
        env.step(bad)
    par = parallel_env(task="basic_triage")
    par.reset(seed=1)
    with pytest.raises(ValueError, match="consultant's action must be"):
        par.step({"consultant": bad})
    aec = aec_env(task="basic_triage")
    aec.reset(seed=1)
    with pytest.raises(ValueError, match="action must be"):
        aec.step(bad)
    nurse = NurseSimTriageEnv()
    nurse.reset(seed=1)
    with pytest.raises(ValueError):
        nurse.step({"category": bad, "intervention": 0})


@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, 6), seed=st.integers(0, 2**31))
def test_fuzzed_valid_actions_play(a, seed):
    env = QueueEnv("basic_triage")
    env.reset(seed=seed)
    _, reward, *_ = env.step(np.int64(a))
    assert math.isfinite(float(reward))


def test_vector_env_refuses_float_and_bool_batches():
    venv = QueueVectorEnv(2, "basic_triage")
    venv.reset(seed=0)
    for bad in ([1.0, 2.0], np.array([True, False]), ["1", "2"], [1, 2, 3]):
        with pytest.raises(ValueError, match="actions"):
            venv.step(bad)
    venv.step(np.array([1, 6], dtype=np.int32))


def test_pettingzoo_refuses_unknown_agents_and_bad_actions():
    par = parallel_env(task="basic_triage")
    par.reset(seed=2)
    step = par.state.step, par.state.substep
    with pytest.raises(ValueError, match=r"unknown agent id\(s\) 'doctor'.*triage_nurse"):
        par.step({"doctor": 0})
    for bad in (1.5, math.inf, True, "2"):
        with pytest.raises(ValueError, match=r"consultant's action must be an int in 0\.\.\d+"):
            par.step({"consultant": bad})
    assert (par.state.step, par.state.substep) == step
    par.step({"consultant": np.int64(0)})  # still playable afterwards


def test_aec_checks_each_action_when_given():
    aec = aec_env(task="basic_triage")
    aec.reset(seed=2)
    first = aec.agent_selection
    with pytest.raises(ValueError, match=f"{first}'s action must be"):
        aec.step(0.5)
    assert aec.agent_selection == first  # nothing was queued
    aec.step(np.int64(0))
    assert aec.agent_selection != first


def test_gym_ed_and_nursesim_refuse_bad_actions():
    env = EdConsultantEnv(task="basic_triage")
    env.reset(seed=4)
    for bad in (2.0, True, math.nan):
        with pytest.raises(ValueError, match="consultant's action must be"):
            env.step(bad)
    nurse = NurseSimTriageEnv()
    nurse.reset(seed=4)
    for bad in ([True, 1], [1.5, 0], np.array([1.0, 2.0]), {"category": "2", "intervention": 0}):
        with pytest.raises(ValueError):
            nurse.step(bad)
    nurse.step(np.array([1, 0]))


@pytest.mark.parametrize("bad", BAD_SEEDS, ids=repr)
def test_seeds_are_validated_the_same_everywhere(bad):
    resets = [
        lambda s: QueueEnv("basic_triage").reset(seed=s),
        lambda s: QueueVectorEnv(2, "basic_triage").reset(seed=s),
        lambda s: QueueVectorEnv(2, "basic_triage").reset(seed=[0, s]),
        lambda s: parallel_env(task="basic_triage").reset(seed=s),
        lambda s: aec_env(task="basic_triage").reset(seed=s),
        lambda s: EdConsultantEnv(task="basic_triage").reset(seed=s),
        lambda s: NurseSimTriageEnv().reset(seed=s),
        lambda s: QueueEnv("basic_triage").reset(options={"episode_seed": s}),
    ]
    for reset in resets:
        with pytest.raises(ValueError, match="seed.* must be a non-negative integer"):
            reset(bad)
    for ruleset in ("classic", "ed"):
        from envs.ed_tool_api import MultiRulesetSession

        with pytest.raises(ToolError, match="seed must be a non-negative integer") as e:
            MultiRulesetSession().start_task("basic_triage", seed=bad, ruleset=ruleset)
        assert e.value.code == "bad_argument"


def test_negative_seed_no_longer_replays_the_positive_one():
    with pytest.raises(ToolError):
        ToolSession().start_task("dynamic_queue", seed=-7)
    assert ToolSession().start_task("dynamic_queue", seed=np.int64(7))["seed"] == 7


def test_helpers_name_the_expected_form():
    assert check_action(np.int16(3), "x") == 3 and check_seed(np.uint32(5)) == 5
    with pytest.raises(ValueError, match="an int in 0..4 — a Python int or a NumPy integer"):
        check_action(3.0, "an int in 0..4")

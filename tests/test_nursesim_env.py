"""NurseSim-Triage-v0: checker, seeding, every reward term by hand, beds, bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.clinical import INTERVENTIONS, Intervention, PatientGenerator
from envs.nursesim import (
    CORRECT_CATEGORY_REWARD,
    NUMERIC_SIZE,
    SAFETY_FAILURE_PENALTY,
    NurseSimNumeric,
    NurseSimTriageEnv,
)

IDS = ("NurseSim-Triage-v0", "edmarl/NurseSim-Triage-v0")
for _id in IDS:  # guard: registration lives in envs/__init__.py
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="envs.nursesim:NurseSimTriageEnv")

INDEX = {iv: iv.action_index for iv in INTERVENTIONS}
GEN = PatientGenerator(0)
CAT = {c: GEN.sample(c) for c in range(1, 6)}


def act(category: int, intervention: Intervention) -> np.ndarray:
    return np.array([category - 1, INDEX[intervention]])


def scripted(patients, arrivals, stays, beds=(1, 1, 1), triage_minutes=5, **kw):
    env = NurseSimTriageEnv(n_patients=len(patients), beds=beds, triage_minutes=triage_minutes,
                            **kw)  # fmt: skip
    obs, _ = env.reset(seed=0, options={"patients": patients, "arrival_minutes": arrivals,
                                        "stay_minutes": stays})  # fmt: skip
    return env, obs


@pytest.mark.parametrize("env_id", IDS)
def test_make_and_checker(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker must not even warn on the raw env
        check_env(env.unwrapped)
    assert isinstance(env.unwrapped, NurseSimTriageEnv)


@pytest.mark.filterwarnings("ignore:.*wrapper applied:UserWarning")
@pytest.mark.filterwarnings("ignore:.*alternative render modes:UserWarning")
def test_numeric_wrapper_checker_and_shape():
    env = NurseSimNumeric(NurseSimTriageEnv())
    check_env(env)  # warns only that a wrapper is applied
    obs, _ = env.reset(seed=3)
    assert obs.shape == (NUMERIC_SIZE,) and obs.dtype == np.float32
    done = False
    while not done:
        obs, _, done, _, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(obs).all()


def test_spaces():
    env = NurseSimTriageEnv()
    assert env.action_space == gym.spaces.MultiDiscrete([5, 7])
    assert [iv.value for iv in INTERVENTIONS] == [
        "send_to_resus", "send_to_majors", "send_to_minors", "order_ecg", "give_analgesia",
        "discharge", "refer_to_gp",
    ]  # fmt: skip
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(obs) >= {"complaint", "vitals", "waiting_room", "available_beds", "patient"}


def _rollout(seed: int, actions_seed: int = 0):
    env = NurseSimTriageEnv()
    env.action_space.seed(actions_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs["patient"]]
    done = False
    while not done:
        obs, r, done, _, info = env.step(env.action_space.sample())
        trace += [obs["patient"], r, info["true_category"], tuple(obs["available_beds"])]
    return trace


def test_seeded_determinism():
    assert _rollout(5) == _rollout(5)
    assert _rollout(5) != _rollout(6)


def test_correct_category_reward():
    env, _ = scripted([CAT[3]], [0], [60])
    _, r, done, _, info = env.step(act(3, Intervention.SEND_TO_MAJORS))
    assert r == CORRECT_CATEGORY_REWARD == 10.0 and done
    assert info["reward_terms"] == {"correct_category": 10.0, "safety_failure": 0.0,
                                    "critical_wait": 0.0}  # fmt: skip
    env, _ = scripted([CAT[3]], [0], [60])
    assert env.step(act(4, Intervention.SEND_TO_MINORS))[1] == 0.0


@pytest.mark.parametrize(
    ("true", "category", "intervention", "failure"),
    [
        (1, 1, Intervention.DISCHARGE, True),  # the NurseSim example
        (2, 2, Intervention.REFER_TO_GP, True),
        (1, 1, Intervention.SEND_TO_MINORS, True),
        (2, 4, Intervention.SEND_TO_MAJORS, True),  # under-triaged by two levels
        (1, 2, Intervention.SEND_TO_RESUS, False),  # one level: wrong, not a safety failure
        (3, 3, Intervention.DISCHARGE, False),
        (5, 5, Intervention.DISCHARGE, False),
    ],
)
def test_safety_failure(true, category, intervention, failure):
    env, _ = scripted([CAT[true]], [0], [60], beds=(2, 2, 2))
    _, r, _, _, info = env.step(act(category, intervention))
    assert info["safety_failure"] is failure
    expected = (SAFETY_FAILURE_PENALTY if failure else 0.0) + (10.0 if category == true else 0.0)
    assert r == expected


def test_critical_wait_depends_on_the_area_chosen():
    # Two true category-1 patients arrive at minute 0; one resus bed held 60 minutes.
    patients, arrivals, stays = [CAT[1], CAT[1]], [0, 0], [60, 60]
    env, _ = scripted(patients, arrivals, stays)
    env.step(act(1, Intervention.SEND_TO_RESUS))  # takes the bed at 0
    obs_before = env._obs()
    assert list(obs_before["available_beds"]) == [0, 1, 1]
    _, r, done, _, info = env.step(act(1, Intervention.SEND_TO_RESUS))  # decided at minute 5
    # queues for resus from 5 until the bed frees at 60: 55 minutes at -1/min
    assert done and info["critical_wait_minutes"] == 55
    assert info["reward_terms"]["critical_wait"] == -55.0 and r == 10.0 - 55.0

    env, _ = scripted(patients, arrivals, stays)
    env.step(act(1, Intervention.SEND_TO_RESUS))
    _, r, _, _, info = env.step(act(1, Intervention.SEND_TO_MAJORS))  # free majors bed
    assert info["critical_wait_minutes"] == 0 and r == 10.0


def test_over_triage_clogs_resus_for_the_critical_patient():
    # A category-4 patient over-triaged into the only resus bed (stay 45) makes the
    # category-1 patient who arrives at minute 10 wait 35 minutes; minors would not.
    patients, arrivals, stays = [CAT[4], CAT[1]], [0, 10], [45, 120]
    env, _ = scripted(patients, arrivals, stays)
    env.step(act(1, Intervention.SEND_TO_RESUS))
    _, r, _, _, info = env.step(act(1, Intervention.SEND_TO_RESUS))
    assert info["critical_wait_minutes"] == 35 and r == 10.0 - 35.0
    env, _ = scripted(patients, arrivals, stays)
    env.step(act(4, Intervention.SEND_TO_MINORS))
    assert env.step(act(1, Intervention.SEND_TO_RESUS))[4]["critical_wait_minutes"] == 0


def test_bed_queue_is_ordered_by_assigned_category():
    # Majors (1 bed) busy until 60. A true-1 patient queues there at minute 5; a true-2
    # patient joins at minute 10. Whoever has the more urgent *assigned* category goes
    # first, so under-triaging the critical patient as 3 costs 30 more waiting minutes.
    patients, arrivals, stays = [CAT[3], CAT[1], CAT[2]], [0, 0, 0], [60, 30, 30]
    waits = {}
    for assigned in (1, 3):
        env, _ = scripted(patients, arrivals, stays)
        env.step(act(3, Intervention.SEND_TO_MAJORS))  # bed until 60
        *_, info = env.step(act(assigned, Intervention.SEND_TO_MAJORS))  # queued at 5
        assert info["critical_wait_minutes"] == 5  # charged up to the next decision (10)
        assert list(env._obs()["bed_queue"]) == [0, 1, 0]
        *_, last = env.step(act(2, Intervention.SEND_TO_MAJORS))  # queued at 10
        waits[assigned] = info["critical_wait_minutes"] + last["critical_wait_minutes"]
    assert waits == {1: 60 - 5, 3: 60 + 30 - 5}


def test_discharge_uses_no_bed_and_waiting_room_counts_arrivals():
    patients = [CAT[5], CAT[4], CAT[4]]
    env, obs = scripted(patients, [0, 0, 3], [30, 30, 30])
    assert obs["waiting_room"] == 1  # the second patient is already here at minute 0
    obs, *_ = env.step(act(5, Intervention.DISCHARGE))
    assert list(obs["available_beds"]) == [1, 1, 1]
    assert obs["waiting_room"] == 1  # minute 5: the third patient arrived at 3


def test_ecg_and_analgesia_route_by_assigned_category():
    env, _ = scripted([CAT[2], CAT[4]], [0, 0], [60, 60], beds=(1, 1, 1))
    obs, *_ = env.step(act(2, Intervention.ORDER_ECG))
    assert list(obs["available_beds"]) == [1, 0, 1]  # category 2 -> majors
    *_, info = env.step(act(4, Intervention.GIVE_ANALGESIA))
    assert info["area"] == "minors"


@pytest.mark.parametrize(
    "bad",
    [np.array([5, 0]), np.array([0, 7]), np.array([-1, 0]), np.array([0.5, 1.0]), 3,
     [1, 2, 3], {"category": 2, "intervention": "call_a_doctor"}, {"category": 9,
     "intervention": "discharge"}, {"intervention": "discharge"}],
)  # fmt: skip
def test_bad_actions_raise_clear_errors_and_change_nothing(bad):
    env = NurseSimTriageEnv()
    env.reset(seed=1)
    with pytest.raises(ValueError):
        env.step(bad)
    assert env._k == 0


def test_dict_action_and_step_after_end():
    env, _ = scripted([CAT[2]], [0], [60])
    _, r, done, _, _ = env.step({"category": 2, "intervention": "order_ecg"})
    assert r == 10.0 and done
    with pytest.raises(RuntimeError, match="reset"):
        env.step(act(2, Intervention.ORDER_ECG))


def test_observation_hides_truth_and_info_reveals_it_after():
    env = NurseSimTriageEnv(render_mode="ansi")
    obs, info = env.reset(seed=4)
    assert "true_category" not in info and "presentation_id" not in obs["patient"]
    pid = env._patients[0].presentation_id
    assert pid not in obs["patient"]
    _, _, _, _, info = env.step(act(3, Intervention.SEND_TO_MAJORS))
    assert info["presentation_id"] == pid and 1 <= info["true_category"] <= 5
    assert "minute" in env.render()


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        NurseSimTriageEnv(beds=(0, 1, 1))
    with pytest.raises(ValueError):
        NurseSimTriageEnv(n_patients=0)
    with pytest.raises(ValueError, match="unknown reset options"):
        NurseSimTriageEnv().reset(seed=0, options={"speed": 2})

"""Fuzz the ``ed`` PettingZoo env with random legal (and some illegal) actions and
check the invariants on every step. The default suite runs ~20k steps; the slow
test runs ≥ 100k (``pytest -m slow tests/test_ed_fuzz.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.ed.config import AGENTS, Place, Role
from envs.ed_triage_v0 import parallel_env

FIXED_TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
ILLEGAL_SHARE = 0.05  # share of actions drawn unmasked, to exercise the no-op path


def check_state(env) -> None:
    s = env.state
    assert set(np.unique(s.place)) <= {int(p) for p in Place}
    served = {r.slot for r in s.served}
    assert len(served) == len(s.served)  # nobody served twice
    assert served == set(np.flatnonzero(s.place == Place.SERVED))
    pending = s.place == Place.PENDING
    assert (s.arrival[pending] > s.step).all() and (s.arrival[~pending] <= s.step).all()
    if s.done:
        assert not (s.place == Place.WAITING).any()
    else:
        assert not (s.place == Place.LEFT).any()
    caps = [s.config.capacity(r, s.doctors) for r in Role]
    assert all(0 <= b <= c for b, c in zip(s.budget, caps, strict=True))
    assert (s.stock >= 0).all() and (s.stock <= np.array(s.config.stock)).all()
    assert 0 <= s.icu_available <= s.scenario.task.icu_beds
    assert ((s.severity >= 1) & (s.severity <= s.arrival_severity)).all()


def fuzz(task: str, seeds, steps_budget: int, reward_mode: str = "team") -> int:
    env = parallel_env(task=task, reward_mode=reward_mode, normaliser="static")
    low, high = env.config.reward_bounds(env.n_slots, env.task.num_doctors)
    spaces = {a: env.observation_space(a)["observation"] for a in AGENTS}
    rng = np.random.default_rng(len(task))
    steps = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        while env.agents:
            actions = {}
            for a in env.agents:
                mask = obs[a]["action_mask"]
                assert mask.dtype == np.int8 and mask[-1] == 1 and mask.sum() >= 1
                if rng.random() < ILLEGAL_SHARE:
                    actions[a] = int(rng.integers(len(mask)))
                else:
                    legal = np.flatnonzero(mask)
                    actions[a] = int(legal[rng.integers(len(legal))])
            prev = {a: obs[a]["action_mask"] for a in env.agents}
            obs, rew, term, trunc, infos = env.step(actions)
            steps += 1
            check_state(env)
            for a in AGENTS:
                r = rew[a]
                assert math.isfinite(r) and low - 1e-9 <= r <= high + 1e-9, (a, r)
                o = obs[a]["observation"]
                sp = spaces[a]
                assert o.shape == sp.shape and o.dtype == sp.dtype
                assert (o >= sp.low).all() and (o <= sp.high).all(), a
                terms = infos[a]["reward_terms"]
                if reward_mode == "individual":
                    assert sum(terms.values()) == pytest.approx(r)
                assert all(math.isfinite(v) for v in terms.values())
                a_ = actions[a]
                if prev[a][a_]:  # legal by the mask ⇒ applied (the converse has one
                    assert not infos[a]["illegal_action"]  # exception: same-sub-step dose)
                elif a != "pharmacist":
                    assert infos[a]["illegal_action"], (a, a_)
            if any(term.values()):
                assert all(term.values()) and not any(trunc.values())
                for a in AGENTS:
                    assert 0.0 <= infos[a]["score"] <= 1.0 and "kpis" in infos[a]
                assert set(obs) == set(rew) == set(AGENTS)
            if steps >= steps_budget:
                return steps
    return steps


@pytest.mark.parametrize("task", FIXED_TASKS)
def test_fuzz_default(task):
    assert fuzz(task, range(10_000), 7_000) >= 7_000


def test_fuzz_individual_rewards():
    assert fuzz("mass_casualty", range(100, 10_000), 1_500, reward_mode="individual") > 0


@pytest.mark.slow
@pytest.mark.parametrize("task", FIXED_TASKS)
def test_fuzz_100k(task):
    # 3 x 35k ≥ 100k random legal steps over many seeds.
    assert fuzz(task, range(1_000, 1_000_000), 35_000) >= 35_000

"""The ``ed`` codec (envs.ed.codec) agrees with the env it encodes for: action sizes,
the END action, encode/decode round trips, and the column maps on real observations."""

from __future__ import annotations

import numpy as np
import pytest

from envs.ed import codec
from envs.ed.config import AGENTS, N_CATEGORIES, N_DRUGS, ROLE_OF, Place, Role
from envs.ed.engine import EdState
from envs.ed.parallel_env import EdTriageParallelEnv


@pytest.mark.parametrize("n_slots", [1, 6, 29])
def test_actions_round_trip_and_cover_the_space(n_slots):
    seen = set()
    for slot in range(n_slots):
        for cat in range(1, N_CATEGORIES + 1):
            a = codec.nurse_action(slot, cat)
            assert codec.decode_nurse(a) == (slot, cat)
            assert codec.action_slot(Role.NURSE, a) == slot
            seen.add(a)
    assert seen == set(range(codec.end_action(Role.NURSE, n_slots)))
    seen = set()
    for slot in range(n_slots):
        for d in range(N_DRUGS):
            a = codec.pharmacist_action(slot, d)
            assert codec.decode_pharmacist(a) == (slot, d)
            assert codec.slot_mask(Role.PHARMACIST, np.arange(a + 1), slot)[d] == a
            seen.add(a)
    assert seen == set(range(codec.end_action(Role.PHARMACIST, n_slots)))
    assert [codec.consultant_action(s) for s in range(n_slots)] == list(range(n_slots))
    for role in Role:
        assert codec.slots_of(role, codec.action_size(role, n_slots)) == n_slots
        assert codec.end_action(role, n_slots) == codec.action_size(role, n_slots) - 1


def test_codec_matches_the_env_spaces_and_observations():
    env = EdTriageParallelEnv(task="mass_casualty")
    obs, _ = env.reset(seed=3)
    state: EdState = env.state
    n = state.n_slots
    for agent in AGENTS:
        role = ROLE_OF[agent]
        assert env.action_space(agent).n == codec.action_size(role, n)
        flat = obs[agent]["observation"]
        rows, ctx = codec.split(role, flat, n)
        features, context = codec.FEATURES[role]
        assert rows.shape == (n, len(features)) and ctx.shape == (len(context),)
        assert ctx[codec.CONTEXT_COLUMNS[role]["step"]] == state.step
        waiting = np.zeros(n, dtype=bool)
        waiting[: state.n] = state.place == Place.WAITING
        assert np.array_equal(rows[:, codec.COLUMNS[role]["present"]] > 0, waiting)
    # The consultant's column map reads the mask's servable slots back.
    rows, _ = codec.split(Role.CONSULTANT, obs["consultant"]["observation"], n)
    servable = rows[:, codec.COLUMNS[Role.CONSULTANT]["servable"]] > 0
    assert np.array_equal(servable, obs["consultant"]["action_mask"][:n] > 0)
    # The nurse's per-slot mask view: a slot is triageable in all categories or none.
    nurse = codec.by_slot(Role.NURSE, obs["triage_nurse"]["action_mask"], n)
    assert nurse.shape == (n, N_CATEGORIES)
    assert np.all(nurse.all(axis=1) == nurse.any(axis=1))

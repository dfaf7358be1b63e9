"""``ed`` graders on hand-computed episodes: normalised by the episode's bound, the
clamp after the missed-emergency penalty."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envs.ed.config import Role
from envs.ed.engine import substep
from envs.ed.graders import grade
from envs.types import Grader
from tests.ed_helpers import END, pat, scenario, state, tiny_task

N, P, C = Role.NURSE, Role.PHARMACIST, Role.CONSULTANT


def _serve_first_at(task, step: int):
    s = state(scenario(task))
    while s.step < step:
        substep(s, (END(N, s), END(P, s), END(C, s)))
    substep(s, (END(N, s), END(P, s), 0))
    return s


def test_easy_grader_divides_by_the_episode_bound_not_the_task_constant():
    # One category 3 served at wait 0: 0.85. The task constant is 1.0, the bound 1.7:
    # time score 0.85 / 1.7 = 0.5 (dividing by the constant would give 0.85).
    s = _serve_first_at(tiny_task(pat("A", 3), steps=2), 0)
    g = grade(s, 1.7)
    assert g["cumulative_reward"] == pytest.approx(0.85)
    assert g["score"] == pytest.approx(0.5)


def test_hard_grader_clamps_after_the_penalty():
    # A category 1 served at wait 1 (0.6), bound 0.6: survival 1, time 1, fairness 1,
    # resources 1 -> base 1.0; one missed-emergency step -> penalty 0.03.
    # clamp(1.0 - 0.03) = 0.97; clamping first would give 0.999 - 0.03 = 0.969.
    task = replace(tiny_task(pat("A", 1), steps=3), grader=Grader.HARD)
    s = _serve_first_at(task, 1)
    g = grade(s, 0.6)
    assert s.missed_emergencies == 1
    assert g["missed_penalty"] == pytest.approx(0.03)
    assert g["score"] == pytest.approx(0.97)

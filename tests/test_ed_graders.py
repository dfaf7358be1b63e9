"""Hand-computed ``ed`` cases for the graders and the rules behind them (each kills a
planted bug of experiments/mutate_ed.py): normalised by the episode's bound, the clamp
after the penalty, missed emergencies on the truth, under-triage, the bound's stock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envs.clinical.presentation import Drug
from envs.ed.bound import plan, replay
from envs.ed.config import DRUG_INDEX, EdConfig, Role
from envs.ed.engine import substep
from envs.ed.graders import grade
from envs.types import Grader
from tests.ed_helpers import END, pat, scenario, state, tiny_task, triage

N, P, C = Role.NURSE, Role.PHARMACIST, Role.CONSULTANT
ASPIRIN = DRUG_INDEX[Drug.ASPIRIN]


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


# ---------------------------------------------------------------- rules behind the grades
def test_missed_emergencies_count_the_true_category_not_the_self_report():
    # A true 1 reporting 4 and two others reporting 1 (true 2 and 4) wait through
    # step 0: one missed emergency step (−0.03), from the true 1 (the self-reports
    # would count two).
    s = state(scenario(tiny_task(pat("A", 1, reported_severity=4),
                                 pat("B", 2, reported_severity=1),
                                 pat("C", 4, reported_severity=1), steps=3)))  # fmt: skip
    res = substep(s, (END(N, s), END(P, s), END(C, s)))
    assert res.advanced
    assert s.missed_emergencies == 1
    assert res.shared["waiting_immediate"] == pytest.approx(-0.03)


@pytest.mark.parametrize(("true", "assigned", "events"), [
    (1, 3, 1), (2, 4, 1), (2, 3, 0), (1, 2, 0), (3, 5, 0),
])  # fmt: skip
def test_under_triage_is_two_levels_low_on_a_true_1_or_2(true, assigned, events):
    s = state(scenario(tiny_task(pat("A", true), steps=3)))
    res = substep(s, (triage(0, assigned), END(P, s), END(C, s)))
    assert s.under_triage_events == events
    assert res.terms[N].get("under_triage", 0.0) == pytest.approx(-0.3 * events)


def test_bound_respects_the_drug_stock():
    # Three category 2 with countdown 1 (aspirin stops it), one doctor, one aspirin,
    # two doses per step. Serve A at 0 (1.0) and B at 1, C at 2; one dose only:
    # dose C: B deteriorated at 1 is worth min(f1(1), f2(1)) = 0.6, C f2(2) = 0.75;
    # total 2.35 (dosing B instead: 0.875 + min(f1(2), f2(2)) = 0.2 -> 2.075).
    # With two aspirins it would be 1.0 + 0.875 + 0.75 = 2.625.
    task = tiny_task(*(pat(x, 2, deterioration_countdown=1) for x in "ABC"), steps=3)
    sc = scenario(task, indicated={0: ASPIRIN, 1: ASPIRIN, 2: ASPIRIN})
    one = EdConfig.with_stock({Drug.ASPIRIN: 1}, dispense_capacity=2)
    two = EdConfig.with_stock({Drug.ASPIRIN: 2}, dispense_capacity=2)
    assert plan(sc, one).objective == pytest.approx(2.35)
    assert sum(r.reward for r in replay(sc, one, plan(sc, one)).served) == pytest.approx(2.35)
    assert plan(sc, two).objective == pytest.approx(2.625)


def test_a_dose_spends_stock_and_a_triage_records_the_condition():
    s = state(scenario(tiny_task(pat("A", 2), steps=3)))
    before = int(s.stock[ASPIRIN])
    s.condition[0] = 1  # at risk when triaged
    substep(s, (triage(0, 2), ASPIRIN, END(C, s)))  # nurse first, dose the same sub-step
    assert int(s.stock[ASPIRIN]) == before - 1
    assert int(s.triage_condition[0]) == 1


def test_time_score_is_capped_at_one():
    # Medium grader, A served at wait 0 (0.85), B never: coverage 1/2, waits [0] (Jain
    # index 1). Against a (stale) optimum of 0.5 the time score is capped at 1:
    # 0.6 * 1 * 0.5 + 0.4 * 1 = 0.7 (uncapped: 0.6 * 1.7 * 0.5 + 0.4 = 0.91).
    task = replace(tiny_task(pat("A", 3), pat("B", 5), steps=2), grader=Grader.MEDIUM)
    s = _serve_first_at(task, 0)
    g = grade(s, 0.5)
    assert g["throughput_score"] == pytest.approx(1.0)
    assert g["score"] == pytest.approx(0.7)

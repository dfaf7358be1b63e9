"""Hand-checked ``ed`` rewards and transitions (docs/spec.md §2.2)."""

from __future__ import annotations

import pytest

from envs.clinical.presentation import Drug
from envs.ed.config import (
    ADVERSE_EVENT,
    DRUG_INDEX,
    IDLE_DOCTORS,
    ILLEGAL_ACTION,
    PREVENTED_DETERIORATION,
    SERVE,
    UNDER_TRIAGE,
    WAITING_IMMEDIATE,
    EdConfig,
    Place,
    Role,
)
from envs.ed.engine import ed_serve_reward, masks, substep
from envs.types import Condition
from tests.ed_helpers import END, dose, pat, scenario, state, tiny_task, triage

N, P, C = Role.NURSE, Role.PHARMACIST, Role.CONSULTANT
ASPIRIN = DRUG_INDEX[Drug.ASPIRIN]
MORPHINE = DRUG_INDEX[Drug.MORPHINE]
PARACETAMOL = DRUG_INDEX[Drug.PARACETAMOL]


def ends(s, **over):
    a = [END(N, s), END(P, s), END(C, s)]
    for k, v in over.items():
        a[{"n": 0, "p": 1, "c": 2}[k]] = v
    return tuple(a)


def test_two_doctors_serve_two_patients_in_one_step():
    s = state(scenario(tiny_task(pat("A", 2), pat("B", 3), doctors=2)))
    r1 = substep(s, ends(s, c=0))
    assert r1.shared[SERVE] == 1.0 and not r1.advanced and s.step == 0
    r2 = substep(s, ends(s, c=1))
    assert r2.shared[SERVE] == pytest.approx(0.85) and r2.advanced and s.step == 1
    assert [r.served_step for r in s.served] == [0, 0]


def test_specialist_takes_two_doctor_slots():
    s = state(scenario(tiny_task(pat("S", 2, requires_specialist=True), pat("B", 3), doctors=2)))
    substep(s, ends(s, c=0))
    # The specialist spent both doctor slots: step 0 ended without serving B.
    assert s.step == 1 and s.place[1] == Place.WAITING and len(s.served) == 1


def test_icu_bed_is_consumed_for_good():
    s = state(
        scenario(
            tiny_task(
                pat("I", 1, requires_icu=True), pat("J", 1, requires_icu=True), doctors=2, icu=1
            )
        )
    )
    substep(s, ends(s, c=0))
    assert s.icu_available == 0 and not masks(s)[C][1]
    r = substep(s, ends(s, c=1))  # illegal: no bed
    assert r.illegal[C] and r.terms[C][ILLEGAL_ACTION] == -0.01 and s.place[1] == Place.WAITING


def test_wait_is_steps_since_arrival_and_waiting_immediate_term():
    s = state(scenario(tiny_task(pat("A", 1), pat("B", 2, step=1))))
    r = substep(s, ends(s))  # everyone ENDs: A waits through step 0
    assert r.advanced and r.shared[WAITING_IMMEDIATE] == pytest.approx(-0.03)
    assert r.terms[C][IDLE_DOCTORS] == pytest.approx(-0.02)
    r = substep(s, ends(s, c=1))  # B arrived at step 1: wait 0
    assert r.shared[SERVE] == 1.0 and s.served[-1].wait_time == 0
    assert s.missed_emergencies == 2  # A waited through steps 0 and 1


def test_indicated_drug_stops_deterioration():
    task = tiny_task(pat("A", 2, deterioration_countdown=2), pat("X", 5), steps=5)
    sc = scenario(task, indicated={0: ASPIRIN})
    s = state(sc)
    r = substep(s, ends(s, n=triage(0, 2), c=1))  # the pharmacist's END is a pass
    assert not r.advanced and not s.ended[P]
    r = substep(s, ends(s, p=dose(0, ASPIRIN)))  # dosed in the same time step
    assert r.terms[P][PREVENTED_DETERIORATION] == pytest.approx(0.2) and s.step == 1
    while s.step < 4:
        substep(s, ends(s))
    assert s.severity[0] == 2 and s.condition[0] == Condition.STABLE and s.deteriorations == 0
    # Without the drug: deteriorates on entering step 0 + 2, and serving then pays the
    # capped reward (never more than the arrival severity's).
    s = state(sc)
    while s.step < 2:
        substep(s, ends(s))
    assert s.severity[0] == 1 and s.condition[0] == Condition.CRITICAL
    r = substep(s, ends(s, c=0))
    assert r.shared[SERVE] == pytest.approx(min(ed_serve_reward(1, 1, 2), 0.75)) == 0.2


def test_allergy_and_unindicated_high_alert_drug_cause_adverse_events():
    sc = scenario(
        tiny_task(pat("A", 3), pat("B", 4)), indicated={0: ASPIRIN, 1: -1}, allergies={0: [ASPIRIN]}
    )
    s = state(sc)
    substep(s, ends(s, n=triage(0, 3)))
    r = substep(s, ends(s, n=END(N, s), p=dose(0, ASPIRIN)))
    assert r.terms[P][ADVERSE_EVENT] == -0.5 and s.severity[0] == 2
    assert s.condition[0] == Condition.AT_RISK and s.adverse_events == 1
    # The nurse ENDed with B untriaged; next step it may re-triage A (condition changed).
    assert s.step == 1 and masks(s)[N][triage(0, 2)]
    r = substep(s, ends(s, n=triage(1, 4), p=dose(0, MORPHINE)))  # high-alert, unindicated
    assert r.terms[P][ADVERSE_EVENT] == -0.5 and s.severity[0] == 1 and s.adverse_events == 2
    assert s.condition[0] == Condition.CRITICAL


def test_under_triage_penalty_only_for_two_levels_on_true_1_2():
    s = state(scenario(tiny_task(pat("A", 1), pat("B", 2), pat("C", 3))))
    r = substep(s, ends(s, n=triage(0, 3)))
    assert r.terms[N][UNDER_TRIAGE] == -0.3
    r = substep(s, ends(s, n=triage(1, 3)))  # one level low: no penalty
    assert UNDER_TRIAGE not in r.terms[N]
    s2 = state(scenario(tiny_task(pat("C", 3))))
    r = substep(s2, ends(s2, n=triage(0, 5)))
    assert UNDER_TRIAGE not in r.terms[N]


def test_illegal_actions_are_counted_no_ops_and_time_still_advances():
    s = state(scenario(tiny_task(pat("A", 3), pat("B", 4), doctors=1)))
    for _ in range(10):  # nonsense actions forever: budgets drain, time advances
        substep(s, (10**6, -5, 99))
        if s.done:
            break
    assert s.done and all(x > 0 for x in s.illegal)
    assert not s.served


def test_spent_capacity_makes_a_dose_illegal():
    s = state(
        scenario(tiny_task(pat("A", 3), pat("B", 4), pat("C", 4))), EdConfig(triage_capacity=3)
    )
    substep(s, ends(s, n=triage(0, 3)))  # the pharmacist passes (nothing legal yet)
    substep(s, ends(s, n=triage(1, 4)))  # now it ENDs with A doseable: turn over
    assert s.ended[P] and not s.ended[N] and s.step == 0
    r = substep(s, ends(s, p=dose(0, PARACETAMOL)))
    assert r.illegal[P] and s.stock[PARACETAMOL] == 3


def test_masks_end_always_legal_and_int8():
    s = state(scenario(tiny_task(pat("A", 3))))
    for m in masks(s).values():
        assert m.dtype.name == "int8" and m[-1] == 1


def test_config_validation_and_stock():
    cfg = EdConfig.with_stock({"aspirin": 0})
    assert cfg.stock[ASPIRIN] == 0
    s = state(scenario(tiny_task(pat("A", 2))), cfg)
    substep(s, ends(s, n=triage(0, 2)))
    assert not masks(s)[P][dose(0, ASPIRIN)]
    with pytest.raises(ValueError):
        EdConfig(triage_capacity=0)

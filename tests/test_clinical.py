"""Presentations, the library, the ground-truth discriminator function, the generator."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from envs.clinical import (
    AVPU,
    COMPLETE_CHARTING,
    DEFAULT_CATEGORY_MIX,
    FLOWCHARTS,
    LIBRARY,
    TEMPLATES,
    VITAL_FIELDS,
    ArrivalMode,
    ClinicalState,
    Discriminator,
    Drug,
    Flowchart,
    Intervention,
    PatientGenerator,
    Presentation,
    Sex,
    ground_truth_category,
    recommended_intervention,
)
from envs.clinical.generator import PHYSIOLOGICAL_RANGE
from envs.types import Severity

D = Discriminator
CALM = dict(hr=75, rr=15, sbp=125, dbp=78, spo2=98, temp=36.8)


def state(pain: int = 0, avpu: AVPU = AVPU.ALERT, findings=(), chronic=False, **vitals):
    return ClinicalState(Flowchart.UNWELL_ADULT, 40, **{**CALM, **vitals}, avpu=avpu, pain=pain,
                         findings=frozenset(findings), chronic=chronic)  # fmt: skip


# ---------------------------------------------------------------- ground truth, by hand
@pytest.mark.parametrize(
    ("s", "category", "must_fire"),
    [
        # 1 — life threat
        (state(findings=[D.AIRWAY_COMPROMISE]), 1, D.AIRWAY_COMPROMISE),
        (state(sbp=85, dbp=50, hr=110), 1, D.SHOCK),  # SBP < 90 with pulse > 100
        (state(sbp=85, dbp=50, hr=95, avpu=AVPU.VOICE), 1, D.SHOCK),  # ... or altered
        (state(avpu=AVPU.UNRESPONSIVE), 1, D.UNRESPONSIVE),
        (state(rr=6), 1, D.INADEQUATE_BREATHING),
        (state(rr=38), 1, D.INADEQUATE_BREATHING),
        (state(spo2=84), 1, D.INADEQUATE_BREATHING),
        (state(findings=[D.CURRENTLY_FITTING]), 1, D.CURRENTLY_FITTING),
        # 2 — very urgent
        (state(spo2=89), 2, D.VERY_LOW_SPO2),
        (state(avpu=AVPU.CONFUSED), 2, D.ALTERED_CONSCIOUSNESS),
        (state(pain=8), 2, D.SEVERE_PAIN),
        (state(pain=3, findings=[D.CARDIAC_PAIN]), 2, D.CARDIAC_PAIN),
        (state(temp=41.2), 2, D.VERY_HOT),
        (state(hr=135), 2, D.NEWS2_RED_PARAMETER),  # pulse >= 131 scores 3
        (state(sbp=85, dbp=50, hr=95), 2, D.NEWS2_RED_PARAMETER),  # hypotension, not shock
        # RR 22 (2) + SpO2 95 (1) + pulse 115 (2) + SBP 105 (1) + 38.2 C (1) = 7, no red
        (state(rr=22, spo2=95, hr=115, sbp=105, dbp=70, temp=38.2), 2, D.NEWS2_HIGH),
        # 3 — urgent
        (state(rr=22, hr=95, sbp=105, dbp=70, temp=38.2), 3, D.NEWS2_MEDIUM),  # 2+1+1+1 = 5
        (state(temp=38.6), 3, D.HOT),
        (state(pain=6), 3, D.MODERATE_PAIN),
        (state(spo2=94), 3, D.LOW_SPO2),
        (state(pain=2, findings=[D.PLEURITIC_PAIN]), 3, D.PLEURITIC_PAIN),
        # 4 — standard
        (state(pain=2), 4, D.RECENT_MILD_PAIN),
        (state(temp=37.8), 4, D.WARM),
        (state(), 4, D.RECENT_PROBLEM),
        # 5 — non-urgent: chronic, painless … and mild chronic pain is not "recent"
        (state(chronic=True), 5, None),
        (state(pain=3, chronic=True), 5, None),
    ],
)
def test_ground_truth_hand_cases(s, category, must_fire):
    truth = ground_truth_category(s)
    assert truth.category == category
    if must_fire is None:
        assert truth.discriminators == ()
    else:
        assert must_fire in truth.discriminators and must_fire in truth.deciding
    # most urgent first, and the category is the minimum over what fired
    cats = [d.category for d in truth.discriminators]
    assert cats == sorted(cats)
    if cats:
        assert truth.category == cats[0]


def test_ground_truth_unpacks_and_lists_every_discriminator():
    category, fired = ground_truth_category(state(pain=9, temp=38.7, spo2=93))
    assert category == Severity.VERY_URGENT
    assert {D.SEVERE_PAIN, D.HOT, D.LOW_SPO2, D.RECENT_PROBLEM} <= set(fired)
    assert D.NEWS2_RED_PARAMETER not in fired  # SpO2 93 scores 2, 38.7 C scores 1


def test_computed_discriminators_cannot_be_smuggled_in_as_findings():
    with pytest.raises(ValueError, match="not clinical findings"):
        state(findings=[D.HOT])


@pytest.mark.parametrize(
    ("category", "flowchart", "fired", "expected"),
    [
        (1, Flowchart.ALLERGY, [D.STRIDOR], Intervention.SEND_TO_RESUS),
        (2, Flowchart.CHEST_PAIN, [D.CARDIAC_PAIN], Intervention.ORDER_ECG),
        (2, Flowchart.ABDOMINAL_PAIN, [D.SEVERE_PAIN], Intervention.GIVE_ANALGESIA),
        (2, Flowchart.HEADACHE, [D.MENINGISM, D.MODERATE_PAIN], Intervention.SEND_TO_MAJORS),
        (3, Flowchart.LIMB_PROBLEMS, [D.DEFORMITY, D.MODERATE_PAIN], Intervention.GIVE_ANALGESIA),
        (3, Flowchart.RASHES, [D.HOT], Intervention.SEND_TO_MAJORS),
        (4, Flowchart.WOUNDS, [D.RECENT_MILD_PAIN], Intervention.SEND_TO_MINORS),
        (5, Flowchart.RASHES, [], Intervention.REFER_TO_GP),
    ],
)
def test_recommended_intervention(category, flowchart, fired, expected):
    assert recommended_intervention(category, flowchart, fired) is expected


# ---------------------------------------------------------------- presentation record
def test_presentation_coerces_chart_strings():
    p = Presentation(
        presentation_id="X", age="71", sex="female", arrival_mode="Walk-in", injury=0,
        complaint="chest pain", flowchart="Chest pain", history=None, hr="88", rr=float("nan"),
        sbp=120, dbp=80, spo2=None, temp=37.2, avpu="verbal", pain=4.0,
        self_reported_urgency=3, allergies=["iv_antibiotics"], indicated_drug="aspirin",
    )  # fmt: skip
    assert (p.sex, p.arrival_mode, p.flowchart, p.avpu) == (
        Sex.FEMALE, ArrivalMode.WALK_IN, Flowchart.CHEST_PAIN, AVPU.VOICE,
    )  # fmt: skip
    assert p.hr == 88.0 and p.rr is None and p.pain == 4 and p.age == 71 and p.history == ""
    assert p.allergies == (Drug.IV_ANTIBIOTICS,) and p.indicated_drug is Drug.ASPIRIN


@pytest.mark.parametrize(
    ("field", "value"), [("avpu", "sleepy"), ("pain", -2), ("self_reported_urgency", 0),
                         ("hr", "fast"), ("flowchart", "toothache")],
)  # fmt: skip
def test_presentation_rejects_bad_values(field, value):
    base = LIBRARY_PATIENT.presentation
    kwargs = {f: getattr(base, f) for f in base.__dataclass_fields__}
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        Presentation(**kwargs)


# ---------------------------------------------------------------- library
def test_library_coverage():
    assert len(LIBRARY) >= 60
    assert len(FLOWCHARTS) >= 20
    per_category = Counter(t.nominal_category for t in LIBRARY)
    assert all(per_category[c] >= 8 for c in Severity), per_category
    assert len(TEMPLATES) == len(LIBRARY)  # ids unique
    assert all(len(t.complaints) >= 2 for t in LIBRARY)
    required = {
        "chest_pain", "shortness_of_breath", "abdominal_pain", "headache", "collapsed_adult",
        "fits", "allergy", "overdose_and_poisoning", "head_injury", "limb_problems", "wounds",
        "burns_and_scalds", "back_pain", "urinary_problems", "pregnancy",
        "diarrhoea_and_vomiting", "rashes", "sore_throat", "mental_illness", "falls",
        "unwell_adult",
    }  # fmt: skip
    assert required <= {f.value for f in FLOWCHARTS}


@pytest.mark.parametrize("template", LIBRARY, ids=lambda t: t.presentation_id)
def test_declared_category_matches_computed_nominal_category(template):
    assert template.nominal_category == template.expected_category


def test_every_template_mostly_lands_in_its_nominal_category():
    gen = PatientGenerator(7, charting=COMPLETE_CHARTING)
    for t in LIBRARY:
        hits = sum(gen.from_template(t).category == t.nominal_category for _ in range(40))
        assert hits >= 24, (t.presentation_id, hits)


# ---------------------------------------------------------------- generator
LIBRARY_PATIENT = PatientGenerator(0).sample()


def _fingerprint(patients):
    return [(p.presentation, p.state, p.category) for p in patients]


def test_same_seed_same_patients_different_seed_different():
    a = PatientGenerator(123).sample_many(60)
    b = PatientGenerator(123).sample_many(60)
    c = PatientGenerator(124).sample_many(60)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)


def test_generator_uses_the_given_rng_only():
    rng = np.random.default_rng(5)
    np.random.seed(0)  # the global RNG must play no part
    first = PatientGenerator(rng).sample_many(5)
    np.random.seed(99)
    second = PatientGenerator(np.random.default_rng(5)).sample_many(5)
    assert _fingerprint(first) == _fingerprint(second)


@pytest.mark.parametrize("category", list(Severity))
def test_conditioned_on_category(category):
    gen = PatientGenerator(3)
    patients = gen.sample_many(30, category=category)
    assert all(p.category == category for p in patients)
    assert all(ground_truth_category(p.state).category == category for p in patients)


def test_default_category_mix():
    patients = PatientGenerator(11).sample_many(5000)
    freq = Counter(int(p.category) for p in patients)
    for c, share in zip(range(1, 6), DEFAULT_CATEGORY_MIX, strict=True):
        assert abs(freq[c] / 5000 - share) < 0.02


def test_custom_mix_and_subset():
    ids = ["CP-01", "CP-05", "LP-03", "HA-04"]
    gen = PatientGenerator(1, presentation_ids=ids, category_mix={2: 1.0, 4: 3.0})
    patients = gen.sample_many(400)
    assert {p.presentation_id for p in patients} <= set(ids)
    assert {int(p.category) for p in patients} == {2, 4}
    assert 0.15 < sum(p.category == 2 for p in patients) / 400 < 0.35
    with pytest.raises(ValueError, match="no template of categories"):
        PatientGenerator(1, presentation_ids=ids)  # default mix needs categories 1, 3, 5
    with pytest.raises(KeyError):
        PatientGenerator(1, presentation_ids=["NOPE"])


def test_every_vital_is_noised_clipped_and_rounded_as_charted():
    gen = PatientGenerator(2, charting=COMPLETE_CHARTING)
    patients = [gen.from_template("SB-03") for _ in range(300)]
    for name in VITAL_FIELDS:
        charted = np.array([getattr(p.presentation, name) for p in patients])
        true = np.array([getattr(p.state, name) for p in patients])
        assert (charted != true).mean() > 0.3, name  # measurement error on every vital
        lo, hi = PHYSIOLOGICAL_RANGE[name]
        assert charted.min() >= lo and charted.max() <= hi
        decimals = 1 if name == "temp" else 0
        assert np.allclose(charted, np.round(charted, decimals))
    assert all(p.presentation.dbp < p.presentation.sbp for p in patients)


def test_between_patient_vitals_are_physiologically_correlated():
    gen = PatientGenerator(4, charting=COMPLETE_CHARTING)
    states = [gen.from_template("CP-05").state for _ in range(1500)]
    col = {f: np.array([getattr(s, f) for s in states]) for f in VITAL_FIELDS}
    assert np.corrcoef(col["hr"], col["temp"])[0, 1] > 0.25  # fever drives the pulse
    assert np.corrcoef(col["sbp"], col["dbp"])[0, 1] > 0.5
    assert np.corrcoef(col["rr"], col["spo2"])[0, 1] < -0.2


def test_missingness_rates():
    from envs.clinical import ChartingConfig

    gen = PatientGenerator(9, charting=ChartingConfig(0.5, 0.5, 0.5))
    ps = [p.presentation for p in gen.sample_many(600)]
    for rate in (
        np.mean([p.hr is None for p in ps]),
        np.mean([p.pain is None for p in ps]),
        np.mean([p.flowchart is None for p in ps]),
    ):
        assert 0.42 < rate < 0.58
    with pytest.raises(ValueError):
        ChartingConfig(p_missing_vital=1.5)


def test_generated_fields_are_consistent_with_template():
    gen = PatientGenerator(6)
    for p in gen.sample_many(200):
        t, pres = p.template, p.presentation
        assert pres.presentation_id == t.presentation_id
        assert pres.complaint in t.complaints and pres.history in t.histories
        assert t.age[0] <= pres.age <= t.age[1]
        assert pres.indicated_drug is t.indicated_drug and pres.needs_icu is t.needs_icu
        assert 1 <= pres.self_reported_urgency <= 5
        assert pres.flowchart in (None, t.flowchart)
        assert t.pain[0] <= p.state.pain <= t.pain[1]
        assert replace(p.state) == p.state


def test_card_shows_what_a_nurse_sees_and_nothing_hidden():
    from envs.clinical import ChartingConfig, format_presentation

    gen = PatientGenerator(8, charting=ChartingConfig(0.5, 0.5, 0.0))
    for gp in gen.sample_many(40):
        p, card = gp.presentation, format_presentation(gp.presentation)
        assert p.complaint in card and p.history in card
        assert p.presentation_id not in card
        assert "needs" not in card.lower() and "indicated" not in card.lower()
        if p.hr is None:
            assert "HR not recorded" in card
        else:
            assert f"HR {p.hr:.0f}," in card

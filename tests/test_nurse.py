"""The rule-based triage nurse: hand cases, robustness to real charts, safety figures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.nurse import RuleBasedNurse, infer_flowchart
from envs.clinical import ChartingConfig, Drug, Flowchart, PatientGenerator, Presentation

NURSE = RuleBasedNurse()
F = Flowchart


def chart(complaint: str, *, flowchart=None, age=45, pain=None, avpu="A", arrival="walk_in",
          injury=False, history="", **vitals) -> Presentation:  # fmt: skip
    v = {"hr": 78, "rr": 15, "sbp": 128, "dbp": 78, "spo2": 98, "temp": 36.8, **vitals}
    return Presentation(
        presentation_id="REAL-1", age=age, sex="M", arrival_mode=arrival, injury=injury,
        complaint=complaint, flowchart=flowchart, history=history, avpu=avpu, pain=pain,
        self_reported_urgency=3, **v,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("p", "category"),
    [
        (chart("Found unresponsive by partner", avpu="U"), 1),
        (chart("Lips and tongue swelling after peanuts, noisy breathing"), 1),
        (chart("Feels faint", sbp=78, dbp=45, hr=128), 1),
        (chart("Breathless", rr=6, spo2=84), 1),
        (chart("Crushing central chest pain into the left arm", pain=6), 2),
        (chart("chest pain", age=58, pain=3), 2),  # unqualified chest pain at 58: cardiac
        (chart("Confused since this morning", avpu="C"), 2),
        (chart("Kidney stone pain", pain=9), 2),
        (chart("Sudden worst headache of my life", pain=7), 2),
        (chart("Fell on outstretched hand, wrist looks like a dinner fork", pain=6), 3),
        (chart("Cough and fever", temp=38.9, pain=0), 3),
        (chart("Twisted ankle playing football", pain=3, injury=True), 4),
        (chart("Sore throat since yesterday", pain=2), 4),
        (chart("Ran out of blood pressure tablets, no symptoms", pain=0), 5),
        (chart("Itchy eczema patches for years, wants a stronger cream", pain=0), 5),
    ],
)
def test_hand_cases(p, category):
    assert NURSE.triage(p) == category


def test_negated_findings_do_not_fire():
    assert NURSE.triage(chart("Hives after an antibiotic, no lip swelling", pain=0)) == 4
    assert NURSE.triage(chart("Low mood for months, no thoughts of harm", pain=0)) == 5


def test_missing_pain_is_read_from_the_words():
    assert NURSE.triage(chart("Excruciating loin pain coming in waves")) == 2
    assert NURSE.triage(chart("Tummy pain since lunch")) == 3  # unscored: assume moderate
    assert NURSE.triage(chart("Mild ache in the knee since yesterday")) == 4


def test_missing_observations_err_towards_safety():
    nothing = {f: None for f in ("hr", "rr", "sbp", "dbp", "spo2", "temp")}
    assert NURSE.triage(chart("Short of breath", pain=0, spo2=None)) == 3
    assert NURSE.triage(chart("Unwell", pain=0, arrival="ambulance", **nothing)) == 3
    assert NURSE.triage(chart("Feels faint", pain=0, sbp=80, hr=None)) == 1  # pulse unknown
    assert NURSE.triage(chart("Unwell", pain=0, **nothing)) == 4  # walk-in, nothing flagged


@pytest.mark.parametrize(
    ("complaint", "flowchart"),
    [
        ("Crushing central chest pain", F.CHEST_PAIN),
        ("ant. chest pain", F.CHEST_PAIN),
        ("dyspnea", F.SHORTNESS_OF_BREATH),
        ("abd pain", F.ABDOMINAL_PAIN),
        ("Hit head on a cupboard, knocked out", F.HEAD_INJURY),
        ("Took 40 paracetamol tablets", F.OVERDOSE_AND_POISONING),
        ("8 weeks pregnant with spotting", F.PREGNANCY),
        ("Fitting for 10 minutes", F.FITS),
        ("Vomiting and diarrhoea for 2 days", F.DIARRHOEA_AND_VOMITING),
        ("Heart racing since an hour", F.PALPITATIONS),
        ("Spotty rash on the chest", F.RASHES),  # "chest" alone is not chest pain
        ("mental change", F.COLLAPSED_ADULT),
        ("feels generally off", F.UNWELL_ADULT),
    ],
)
def test_picks_a_flowchart_from_the_complaint(complaint, flowchart):
    assert infer_flowchart(complaint) is flowchart


def test_flowchart_none_is_inferred_and_reported():
    a = NURSE.assess(chart("Crushing central chest pain", pain=5))
    assert a.flowchart_inferred and a.flowchart is F.CHEST_PAIN and a.category == 2
    assert "cardiac pain" in a.deciding


def test_never_reads_hidden_fields():
    gen = PatientGenerator(21)
    for gp in gen.sample_many(300):
        p = gp.presentation
        masked = replace(p, presentation_id="??", indicated_drug=Drug.GLUCOSE,
                         needs_icu=not p.needs_icu, needs_specialist=not p.needs_specialist,
                         self_reported_urgency=5 if p.self_reported_urgency < 5 else 1)  # fmt: skip
        assert NURSE.triage(masked) == NURSE.triage(p)


def _rates(charting: ChartingConfig, n: int, seed: int) -> tuple[float, float]:
    patients = PatientGenerator(seed, charting=charting).sample_many(n)
    true = np.array([int(p.category) for p in patients])
    got = np.array([NURSE.triage(p.presentation) for p in patients])
    high = true <= 2
    return float(np.mean(got[high] > true[high])), float(np.mean(true == got))


@pytest.mark.parametrize(
    "charting",
    [ChartingConfig(), ChartingConfig(0.03, 0.05, 1.0), ChartingConfig(0.2, 0.3, 0.5)],
    ids=["realistic", "complaint_only", "sparse"],
)
def test_under_triage_of_true_1_2_at_most_5_percent(charting):
    under, accuracy = _rates(charting, 2500, seed=101)
    assert under <= 0.05
    assert accuracy >= 0.80  # and it is not safe merely by calling everyone category 1


def test_triage_is_deterministic_and_in_range():
    ps = [p.presentation for p in PatientGenerator(5).sample_many(50)]
    first = NURSE.triage_many(ps)
    assert first == RuleBasedNurse().triage_many(ps)
    assert set(first) <= {1, 2, 3, 4, 5}


def test_decide_gives_protocol_interventions():
    from envs.clinical import Intervention

    assert NURSE.decide(chart("Found unresponsive", avpu="U")) == (1, Intervention.SEND_TO_RESUS)
    assert NURSE.decide(chart("Crushing chest pain", pain=6)) == (2, Intervention.ORDER_ECG)
    assert NURSE.decide(chart("Kidney stone pain", pain=9)) == (2, Intervention.GIVE_ANALGESIA)
    assert NURSE.decide(chart("Back went into spasm", pain=6)) == (3, Intervention.GIVE_ANALGESIA)
    assert NURSE.decide(chart("Twisted ankle", pain=3)) == (4, Intervention.SEND_TO_MINORS)
    assert NURSE.decide(chart("Ran out of tablets, no symptoms", pain=0)) == (
        5, Intervention.REFER_TO_GP,
    )  # fmt: skip


def test_eval_metrics_by_hand():
    from envs.clinical.triage_metrics import triage_metrics

    m = triage_metrics(np.array([1, 1, 2, 3, 5]), np.array([1, 2, 3, 3, 4]))
    assert m["confusion_matrix"][0] == [1, 1, 0, 0, 0, 0] and m["confusion_matrix"][4][3] == 1
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["under_triage_true_1_2"] == pytest.approx(2 / 3)  # 1->2 and 2->3
    assert m["true_1_2_assigned_3_to_5"] == pytest.approx(1 / 3)
    assert m["over_triage_all"] == pytest.approx(1 / 5)  # 5->4


def test_nurse_beats_naive_policies_in_nursesim():
    from experiments.eval_nurse import rollout_nursesim

    r = rollout_nursesim(episodes=15, seed=0)["per_episode_mean"]
    nurse = r["rule_based_nurse"]
    assert nurse["return"] > max(v["return"] for k, v in r.items() if k != "rule_based_nurse")
    assert nurse["safety_failures"] <= 0.2


def test_real_world_chart_abbreviations_and_units():
    """Charts from real EDs: abbreviations, Fahrenheit, free-text pain."""
    from agents.nurse import infer_flowchart
    from envs.clinical import Presentation
    from envs.clinical.presentation import Flowchart as FC

    expected = {"ETOH": FC.OVERDOSE_AND_POISONING, "SI": FC.MENTAL_ILLNESS,
                "UTI": FC.URINARY_PROBLEMS, "MVC": FC.MAJOR_TRAUMA, "Abscess": FC.WOUNDS,
                "AMS": FC.COLLAPSED_ADULT, "Dysuria": FC.URINARY_PROBLEMS}  # fmt: skip
    assert {c: infer_flowchart(c) for c in expected} == expected

    def chart(**kw):
        base = dict(presentation_id="real-1", age=60, sex="F", arrival_mode="walk_in",
                    injury=False, complaint="fever", flowchart=None, history="", hr=88, rr=16,
                    sbp=130, dbp=80, spo2=98, temp=37.0, avpu="A", pain=None,
                    self_reported_urgency=3)  # fmt: skip
        return Presentation(**{**base, **kw})

    assert chart(temp=98.6).temp == 37.0  # °F charted: read as 37.0 °C, not "very hot"
    assert RuleBasedNurse().triage(chart(temp=98.6)) == RuleBasedNurse().triage(chart())
    assert chart(temp=102.2).temp == 39.0
    assert [chart(pain=v).pain for v in ("7/10", "8-9", "unable", "UTA", "", "13", 4)] == [
        7,
        8,
        None,
        None,
        None,
        10,
        4,
    ]
    with pytest.raises(ValueError, match="pain"):
        chart(pain=-1)
    assert RuleBasedNurse().triage(chart(complaint="AMS")) <= 2


def test_memoised_text_rules_keep_per_patient_reasons():
    # The text-rule scan is memoised per (complaint, history, flowchart): the same words
    # with other vitals, pain or age must still be assessed on those.
    nurse = RuleBasedNurse()
    calm = chart("Chest pain since this morning", age=25, pain=2)
    assert nurse.triage(calm) == 4
    assert nurse.triage(replace(calm, sbp=78, dbp=45, hr=128)) == 1  # shock, same words
    assert nurse.triage(replace(calm, age=58)) == 2  # unqualified chest pain: cardiac
    assert nurse.triage(replace(calm, pain=9)) == 2
    assert nurse.triage(calm) == 4
    # Negation and a second, affirmed mention of the same finding (the scan goes on
    # past a negated first match).
    assert nurse.triage(chart("No lip swelling earlier, now lip swelling", pain=0)) == 2
    assert nurse.triage(chart("Hives after an antibiotic, no lip swelling", pain=0)) == 4


def test_memoised_nurse_equals_fresh_nurses_on_generated_patients():
    pres = [g.presentation for g in PatientGenerator(7).sample_many(400)]
    shared = RuleBasedNurse()
    first = [shared.assess(p) for p in pres]
    assert [shared.assess(p) for p in pres] == first  # served from the memo
    assert all(RuleBasedNurse().assess(p) == a for p, a in zip(pres, first, strict=True))

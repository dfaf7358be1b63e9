"""Ground truth: the MTS category as an explicit function of the noiseless clinical state.

:func:`ground_truth_category` evaluates every discriminator of
:data:`DISCRIMINATORS` on a :class:`ClinicalState` and returns the most urgent
category that fired (Manchester Triage System: the first positive discriminator from
the top decides) together with *all* discriminators that fired, for rationales.
No discriminator → category 5 (non-urgent). The category is never drawn and then
dressed: the generator draws a clinical state and this function labels it.

Discriminator definitions follow Manchester Triage Group, *Emergency Triage* (3rd ed.)
— general discriminators (life threat, haemorrhage, pain, conscious level,
temperature, SpO2) and the flowchart-specific ones — with the vital-sign thresholds
of the MTS dictionary, plus NEWS2 (RCP 2017) escalation bands:

* NEWS2 single red parameter (3 points) or aggregate ≥ 7 → 2 (RCP: urgent /
  emergency response); aggregate 5–6 → 3 (urgent response).

The table is rendered in docs/clinical.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from envs.clinical.news2 import (
    HIGH_THRESHOLD,
    HR_BANDS,
    MEDIUM_THRESHOLD,
    RED_SCORE,
    RR_BANDS,
    SBP_BANDS,
    SPO2_SCALE1_BANDS,
    TEMP_BANDS,
    News2,
    _avpu_points,
    _band,
    news2,
)
from envs.clinical.presentation import AVPU, Flowchart, Intervention
from envs.types import Severity

# Vital-sign thresholds (adult). MTS dictionary unless marked.
SHOCK_SBP = 90  # mmHg, systolic below this …
SHOCK_HR = 100  # … with pulse above this (or altered conscious level) = shock
INADEQUATE_RR_LOW = 8  # breaths/min, below = inadequate breathing
INADEQUATE_RR_HIGH = 35  # above = exhausting, ineffective breathing
CRITICAL_SPO2 = 85  # %, on air: life-threatening hypoxaemia
VERY_LOW_SPO2 = 90  # MTS "very low SpO2": < 90 % on air
LOW_SPO2 = 95  # MTS "low SpO2": < 95 % on air
VERY_HOT = 41.0  # °C, MTS "very hot"
HOT = 38.5  # MTS "hot"
WARM = 37.5  # MTS "warm"
SEVERE_PAIN = 8  # MTS pain ruler: 8–10 severe, 5–7 moderate, 1–4 mild
MODERATE_PAIN = 5
MILD_PAIN = 1


class Discriminator(str, Enum):
    """Every MTS discriminator the ground truth knows. Members marked *finding* are
    clinical findings a template carries (conveyed to the nurse in the complaint);
    the others are computed from vitals, AVPU, pain and time course."""

    # category 1 — immediate
    AIRWAY_COMPROMISE = "airway_compromise"
    STRIDOR = "stridor"
    INADEQUATE_BREATHING = "inadequate_breathing"
    SHOCK = "shock"
    UNRESPONSIVE = "unresponsive"
    CURRENTLY_FITTING = "currently_fitting"
    EXSANGUINATING_HAEMORRHAGE = "exsanguinating_haemorrhage"
    # category 2 — very urgent
    VERY_LOW_SPO2 = "very_low_spo2"
    ALTERED_CONSCIOUSNESS = "altered_consciousness"
    SEVERE_PAIN = "severe_pain"
    VERY_HOT = "very_hot"
    NEWS2_RED_PARAMETER = "news2_red_parameter"
    NEWS2_HIGH = "news2_high"
    CARDIAC_PAIN = "cardiac_pain"
    PAIN_RADIATING_TO_BACK = "pain_radiating_to_back"
    ABRUPT_ONSET_HEADACHE = "abrupt_onset_headache"
    MENINGISM = "meningism"
    ACUTE_NEUROLOGICAL_DEFICIT = "acute_neurological_deficit"
    NON_BLANCHING_RASH = "non_blanching_rash"
    FACIAL_OEDEMA = "facial_oedema"
    UNABLE_TO_TALK_IN_SENTENCES = "unable_to_talk_in_sentences"
    HIGH_LETHALITY = "high_lethality"
    HIGH_RISK_OF_SELF_HARM = "high_risk_of_self_harm"
    VOMITING_BLOOD = "vomiting_blood"
    HEAVY_PV_BLOOD_LOSS = "heavy_pv_blood_loss"
    HIGH_RISK_MECHANISM = "high_risk_mechanism"
    IMPAIRED_DISTAL_CIRCULATION = "impaired_distal_circulation"
    INHALATION_INJURY = "inhalation_injury"
    ELECTRICAL_INJURY = "electrical_injury"
    LARGE_BURN = "large_burn"
    CHEMICAL_EYE_INJURY = "chemical_eye_injury"
    SPECIAL_RISK_OF_INFECTION = "special_risk_of_infection"
    # category 3 — urgent
    LOW_SPO2 = "low_spo2"
    HOT = "hot"
    MODERATE_PAIN = "moderate_pain"
    NEWS2_MEDIUM = "news2_medium"
    PLEURITIC_PAIN = "pleuritic_pain"
    HISTORY_OF_UNCONSCIOUSNESS = "history_of_unconsciousness"
    DEFORMITY = "deformity"
    OPEN_FRACTURE = "open_fracture"
    PERSISTENT_VOMITING = "persistent_vomiting"
    SIGNS_OF_DEHYDRATION = "signs_of_dehydration"
    UNCONTROLLABLE_MINOR_HAEMORRHAGE = "uncontrollable_minor_haemorrhage"
    PV_BLEEDING_IN_PREGNANCY = "pv_bleeding_in_pregnancy"
    URINARY_RETENTION = "urinary_retention"
    MODERATE_RISK_OF_SELF_HARM = "moderate_risk_of_self_harm"
    DISRUPTIVE = "disruptive"
    SIGNIFICANT_HISTORY_OF_ALLERGY = "significant_history_of_allergy"
    LOW_PEAK_FLOW = "low_peak_flow"
    # category 4 — standard
    WARM = "warm"
    RECENT_MILD_PAIN = "recent_mild_pain"
    RECENT_PROBLEM = "recent_problem"

    @property
    def category(self) -> Severity:
        return DISCRIMINATORS[self].category

    @property
    def label(self) -> str:
        return DISCRIMINATORS[self].label


@dataclass(frozen=True, slots=True)
class DiscriminatorSpec:
    category: Severity
    label: str  # short phrase used in rationales
    definition: str  # when it fires
    finding: bool  # True: a template's clinical finding; False: computed


S = Severity
D = Discriminator


def _f(cat: Severity, label: str, definition: str) -> DiscriminatorSpec:
    return DiscriminatorSpec(cat, label, definition, finding=True)


def _c(cat: Severity, label: str, definition: str) -> DiscriminatorSpec:
    return DiscriminatorSpec(cat, label, definition, finding=False)


DISCRIMINATORS: dict[Discriminator, DiscriminatorSpec] = {
    D.AIRWAY_COMPROMISE: _f(S(1), "airway compromise", "obstructed or threatened airway"),
    D.STRIDOR: _f(S(1), "stridor", "inspiratory or expiratory noise from an obstructed airway"),
    D.INADEQUATE_BREATHING: _c(
        S(1), "inadequate breathing",
        f"finding, or RR < {INADEQUATE_RR_LOW} or > {INADEQUATE_RR_HIGH}/min, or SpO2 < "
        f"{CRITICAL_SPO2} % on air",
    ),
    D.SHOCK: _c(
        S(1), "shock",
        f"finding (pale, clammy, poorly perfused), or SBP < {SHOCK_SBP} mmHg with pulse > "
        f"{SHOCK_HR}/min or altered conscious level",
    ),
    D.UNRESPONSIVE: _c(S(1), "unresponsive", "AVPU U"),
    D.CURRENTLY_FITTING: _f(S(1), "currently fitting", "tonic or clonic activity now"),
    D.EXSANGUINATING_HAEMORRHAGE: _f(
        S(1), "exsanguinating haemorrhage", "blood loss so fast that death follows without control"
    ),
    D.VERY_LOW_SPO2: _c(S(2), "very low SpO2", f"SpO2 < {VERY_LOW_SPO2} % on air"),
    D.ALTERED_CONSCIOUSNESS: _c(
        S(2), "altered conscious level", "AVPU C (new confusion), V or P"
    ),
    D.SEVERE_PAIN: _c(S(2), "severe pain", f"pain {SEVERE_PAIN}-10/10"),
    D.VERY_HOT: _c(S(2), "very hot", f"temperature >= {VERY_HOT} C"),
    D.NEWS2_RED_PARAMETER: _c(
        S(2), "NEWS2 red parameter", "a single NEWS2 parameter scoring 3 (RCP: urgent response)"
    ),
    D.NEWS2_HIGH: _c(
        S(2), "NEWS2 high", f"NEWS2 >= {HIGH_THRESHOLD} (RCP: emergency response)"
    ),
    D.CARDIAC_PAIN: _f(
        S(2), "cardiac pain",
        "central crushing/heavy pain, may radiate to arm, jaw or back, with sweating or nausea",
    ),
    D.PAIN_RADIATING_TO_BACK: _f(S(2), "pain radiating to the back", "e.g. aortic pain"),
    D.ABRUPT_ONSET_HEADACHE: _f(
        S(2), "abrupt onset headache", "maximal within seconds to minutes (thunderclap)"
    ),
    D.MENINGISM: _f(S(2), "signs of meningism", "neck stiffness with headache and photophobia"),
    D.ACUTE_NEUROLOGICAL_DEFICIT: _f(
        S(2), "acute neurological deficit", "new weakness, speech, sensory or sphincter loss"
    ),
    D.NON_BLANCHING_RASH: _f(S(2), "non-blanching rash", "purpuric rash that does not fade"),
    D.FACIAL_OEDEMA: _f(S(2), "facial or tongue oedema", "swelling of the face, lips or tongue"),
    D.UNABLE_TO_TALK_IN_SENTENCES: _f(
        S(2), "unable to talk in sentences", "too breathless to complete short sentences"
    ),
    D.HIGH_LETHALITY: _f(
        S(2), "high lethality", "substance or dose with a high risk of serious harm or death"
    ),
    D.HIGH_RISK_OF_SELF_HARM: _f(
        S(2), "high risk of self-harm", "intent and a plan, or an attempt in progress"
    ),
    D.VOMITING_BLOOD: _f(S(2), "vomiting blood", "fresh or altered (coffee-ground) haematemesis"),
    D.HEAVY_PV_BLOOD_LOSS: _f(S(2), "heavy PV blood loss", "soaking pads, clots, in pregnancy"),
    D.HIGH_RISK_MECHANISM: _f(
        S(2), "high-risk mechanism of injury",
        "high-speed collision, ejection, fall > 2 m, pedestrian struck",
    ),
    D.IMPAIRED_DISTAL_CIRCULATION: _f(
        S(2), "impaired distal circulation", "cold, pale, pulseless or numb limb"
    ),
    D.INHALATION_INJURY: _f(S(2), "inhalation injury", "smoke or hot gas in an enclosed space"),
    D.ELECTRICAL_INJURY: _f(S(2), "electrical injury", "mains or high-voltage current"),
    D.LARGE_BURN: _f(S(2), "large burn", "partial or full thickness burn > 15 % body surface"),
    D.CHEMICAL_EYE_INJURY: _f(S(2), "chemical eye injury", "acid or alkali splash to the eye"),
    D.SPECIAL_RISK_OF_INFECTION: _f(
        S(2), "special risk of infection", "fever in an immunosuppressed patient (chemotherapy)"
    ),
    D.LOW_SPO2: _c(S(3), "low SpO2", f"SpO2 < {LOW_SPO2} % on air"),
    D.HOT: _c(S(3), "hot", f"temperature >= {HOT} C"),
    D.MODERATE_PAIN: _c(S(3), "moderate pain", f"pain {MODERATE_PAIN}-{SEVERE_PAIN - 1}/10"),
    D.NEWS2_MEDIUM: _c(
        S(3), "NEWS2 medium",
        f"NEWS2 {MEDIUM_THRESHOLD}-{HIGH_THRESHOLD - 1} (RCP: urgent response)",
    ),
    D.PLEURITIC_PAIN: _f(S(3), "pleuritic pain", "sharp chest pain worse on breathing or coughing"),
    D.HISTORY_OF_UNCONSCIOUSNESS: _f(
        S(3), "history of unconsciousness", "witnessed or reported loss of consciousness"
    ),
    D.DEFORMITY: _f(S(3), "deformity", "abnormal angulation or rotation of a limb"),
    D.OPEN_FRACTURE: _f(S(3), "open fracture", "wound communicating with a fracture"),
    D.PERSISTENT_VOMITING: _f(
        S(3), "persistent vomiting", "vomiting continuously, unable to keep fluids"
    ),
    D.SIGNS_OF_DEHYDRATION: _f(
        S(3), "signs of dehydration", "dry mouth, postural dizziness, little urine"
    ),
    D.UNCONTROLLABLE_MINOR_HAEMORRHAGE: _f(
        S(3), "uncontrollable minor haemorrhage", "bleeding that continues despite pressure"
    ),
    D.PV_BLEEDING_IN_PREGNANCY: _f(S(3), "PV bleeding in pregnancy", "any vaginal bleeding"),
    D.URINARY_RETENTION: _f(S(3), "urinary retention", "unable to pass urine, distended bladder"),
    D.MODERATE_RISK_OF_SELF_HARM: _f(
        S(3), "moderate risk of self-harm", "thoughts of harm without a plan"
    ),
    D.DISRUPTIVE: _f(S(3), "disruptive", "behaviour disturbing the department"),
    D.SIGNIFICANT_HISTORY_OF_ALLERGY: _f(
        S(3), "significant history of allergy", "previous anaphylaxis to the same trigger"
    ),
    D.LOW_PEAK_FLOW: _f(S(3), "low peak flow", "PEF < 50 % of best or predicted"),
    D.WARM: _c(S(4), "warm", f"temperature {WARM}-{HOT - 0.1:.1f} C"),
    D.RECENT_MILD_PAIN: _c(
        S(4), "recent mild pain", f"pain {MILD_PAIN}-{MODERATE_PAIN - 1}/10, < 7 days"
    ),
    D.RECENT_PROBLEM: _c(S(4), "recent problem", "onset within the last 7 days"),
}  # fmt: skip
FINDINGS: frozenset[Discriminator] = frozenset(
    [d for d, spec in DISCRIMINATORS.items() if spec.finding]
    + [D.INADEQUATE_BREATHING, D.SHOCK]  # computed from vitals, or a clinical finding
)
"""Discriminators a template may carry as clinical findings."""
_RANK = {d: i for i, d in enumerate(Discriminator)}  # table order
_CATEGORY = {d: spec.category for d, spec in DISCRIMINATORS.items()}
_FINDING_RULES = frozenset(d for d, spec in DISCRIMINATORS.items() if spec.finding)


@dataclass(frozen=True, slots=True)
class ClinicalState:
    """The noiseless clinical state the ground truth is a function of (adult ≥ 16)."""

    flowchart: Flowchart
    age: int
    hr: float
    rr: float
    sbp: float
    dbp: float
    spo2: float
    temp: float
    avpu: AVPU
    pain: int
    findings: frozenset[Discriminator] = frozenset()
    chronic: bool = False  # problem present > 7 days: "recent" discriminators do not fire

    def __post_init__(self) -> None:
        unknown = set(self.findings) - FINDINGS
        if unknown:
            raise ValueError(f"not clinical findings: {sorted(d.value for d in unknown)}")

    @property
    def news2(self) -> News2:
        return news2(rr=self.rr, spo2=self.spo2, sbp=self.sbp, hr=self.hr, avpu=self.avpu,
                     temp=self.temp)  # fmt: skip


class GroundTruth(NamedTuple):
    """``category`` and every discriminator that fired, most urgent first."""

    category: Severity
    discriminators: tuple[Discriminator, ...]

    @property
    def deciding(self) -> tuple[Discriminator, ...]:
        """The discriminators at the assigned category (those that decided it)."""
        return tuple(d for d in self.discriminators if d.category == self.category)


def fired_discriminators(state: ClinicalState) -> tuple[Discriminator, ...]:
    """Every discriminator that fires on ``state``, most urgent first (table order)."""
    s = state
    altered = s.avpu is not AVPU.ALERT
    total, red = _news2_total_red(s)
    fired = {d for d in s.findings if d in _FINDING_RULES}  # the rest: rules below
    rules: Iterable[tuple[Discriminator, bool]] = (
        (D.INADEQUATE_BREATHING, D.INADEQUATE_BREATHING in s.findings
         or s.rr < INADEQUATE_RR_LOW or s.rr > INADEQUATE_RR_HIGH or s.spo2 < CRITICAL_SPO2),
        (D.SHOCK, D.SHOCK in s.findings or (s.sbp < SHOCK_SBP and (s.hr > SHOCK_HR or altered))),
        (D.UNRESPONSIVE, s.avpu is AVPU.UNRESPONSIVE),
        (D.VERY_LOW_SPO2, s.spo2 < VERY_LOW_SPO2),
        (D.ALTERED_CONSCIOUSNESS, s.avpu in (AVPU.CONFUSED, AVPU.VOICE, AVPU.PAIN)),
        (D.SEVERE_PAIN, s.pain >= SEVERE_PAIN),
        (D.VERY_HOT, s.temp >= VERY_HOT),
        (D.NEWS2_RED_PARAMETER, red),
        (D.NEWS2_HIGH, total >= HIGH_THRESHOLD),
        (D.LOW_SPO2, s.spo2 < LOW_SPO2),
        (D.HOT, HOT <= s.temp < VERY_HOT),
        (D.MODERATE_PAIN, MODERATE_PAIN <= s.pain < SEVERE_PAIN),
        (D.NEWS2_MEDIUM, MEDIUM_THRESHOLD <= total < HIGH_THRESHOLD),
        (D.WARM, WARM <= s.temp < HOT),
        (D.RECENT_MILD_PAIN, not s.chronic and MILD_PAIN <= s.pain < MODERATE_PAIN),
        (D.RECENT_PROBLEM, not s.chronic),
    )  # fmt: skip
    fired.update(d for d, on in rules if on)
    return tuple(sorted(fired, key=_RANK.__getitem__))


def _news2_total_red(s: ClinicalState) -> tuple[int, bool]:
    """``(s.news2.total, s.news2.red_score)`` without building the breakdown (air,
    scale 1, as :attr:`ClinicalState.news2`)."""
    if None in (s.rr, s.spo2, s.sbp, s.hr, s.temp, s.avpu):
        score = s.news2
        return score.total, score.red_score
    sub = (
        _band(float(s.rr), RR_BANDS), _band(float(s.spo2), SPO2_SCALE1_BANDS),
        _band(float(s.sbp), SBP_BANDS), _band(float(s.hr), HR_BANDS),
        _avpu_points(s.avpu), _band(float(s.temp), TEMP_BANDS),
    )  # fmt: skip
    return sum(sub), max(sub) >= RED_SCORE


def ground_truth_category(state: ClinicalState) -> GroundTruth:
    """The MTS category of ``state``: the most urgent discriminator that fired, else 5."""
    fired = fired_discriminators(state)
    category = min((_CATEGORY[d] for d in fired), default=Severity.NON_URGENT)
    return GroundTruth(Severity(category), fired)


# Flowcharts where an ECG is the first investigation at triage (NICE CG95: 12-lead ECG
# as soon as possible for suspected ACS; syncope and palpitations likewise).
ECG_FLOWCHARTS = frozenset(
    {Flowchart.CHEST_PAIN, Flowchart.PALPITATIONS, Flowchart.COLLAPSED_ADULT}
)
ANALGESIA_DISCRIMINATORS = frozenset({D.SEVERE_PAIN, D.MODERATE_PAIN})


def recommended_intervention(
    category: Severity | int, flowchart: Flowchart | None, fired: Iterable[Discriminator]
) -> Intervention:
    """The protocol intervention at triage for a patient of ``category``.

    1 → resus. 2 → ECG on the chest-pain / palpitations / collapse flowcharts, else
    analgesia when pain decided the category, else majors. 3 → analgesia when pain is
    among the deciding discriminators, else majors. 4 → minors. 5 → GP (streamed to
    primary care).
    """
    cat = Severity(category)
    fired = tuple(fired)
    deciding = {d for d in fired if d.category == cat}
    if cat is Severity.IMMEDIATE:
        return Intervention.SEND_TO_RESUS
    if cat is Severity.VERY_URGENT:
        if flowchart in ECG_FLOWCHARTS or D.CARDIAC_PAIN in fired:
            return Intervention.ORDER_ECG
        if deciding and deciding <= ANALGESIA_DISCRIMINATORS:
            return Intervention.GIVE_ANALGESIA
        return Intervention.SEND_TO_MAJORS
    if cat is Severity.URGENT:
        if deciding & ANALGESIA_DISCRIMINATORS:
            return Intervention.GIVE_ANALGESIA
        return Intervention.SEND_TO_MAJORS
    if cat is Severity.LESS_URGENT:
        return Intervention.SEND_TO_MINORS
    return Intervention.REFER_TO_GP

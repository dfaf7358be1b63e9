"""KTAS / CTAS modifiers for the rule nurse on real charts (``RuleBasedNurse(scale="ktas")``).

Real charts triaged on the Korean Triage and Acuity Scale (KTAS, a derivative of the
Canadian CTAS) are judged against KTAS, not MTS, and the two scales disagree where
it matters most on ordinary visits: the pain ruler (CTAS/KTAS split *central* pain —
chest, abdomen, head, flank — from *peripheral* pain, and call NRS 4 moderate) and the
complaint itself (CTAS/KTAS give each complaint a level before modifiers: stroke
symptoms 2, dyspnoea and dizziness 3, a dressing or prescription 5). This module is
the KTAS reading of a chart; the MTS nurse (:mod:`agents.nurse`) is unchanged.

Sources (the tables below cite them by number):

1. Bullard MJ et al. *Revisions to the Canadian Emergency Department Triage and Acuity
   Scale (CTAS) Guidelines.* CJEM 2014;16(6):485-489, and the CTAS 2008 adult
   guidelines (Bullard et al., CJEM 2008;10(2):136-142): first-order modifiers
   (respiratory distress by SpO2 < 90 / 90-94 %, haemodynamic stability, level of
   consciousness by GCS 3-9 / 10-13, temperature with SIRS criteria, pain severity
   central vs peripheral: severe 8-10, moderate 4-7, mild < 4; high-risk mechanism)
   and the CEDIS complaint list with each complaint's usual level.
2. Park J, Lim T. *Korean Triage and Acuity Scale (KTAS).* J Korean Soc Emerg Med
   2017: KTAS adopts the CTAS first- and second-order modifiers and complaint list.
3. Bone RC et al. ACCP/SCCM consensus (Chest 1992;101:1644): SIRS criteria
   (T > 38 °C, HR > 90/min, RR > 20/min).
4. Royal College of Physicians, NEWS2 (2017): response thresholds 5 and 7.
5. Nemec M et al. (BANC study), Acad Emerg Med 2010;17:284: older patients with
   non-specific complaints (weakness) are often seriously ill; syncope risk rises with
   age (every syncope rule counts age).

Tuned on a random half of the development file (``../shared/data/ktas``; Moon
S-H et al., PLoS ONE 2019, doi:10.1371/journal.pone.0216972) and checked on the other
half; the figures and the commands are in docs/clinical.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from envs.clinical.news2 import news2_of
from envs.clinical.presentation import AVPU, ArrivalMode, Presentation, replace_unchecked

Add = Callable[[tuple[int, str]], None]


@dataclass(frozen=True, slots=True)
class ComplaintRule:
    """A CEDIS-style complaint (by its charted words) and its KTAS level before
    modifiers; ``central``: pain of this complaint reads on the central pain ruler."""

    name: str
    level: int
    pattern: str
    central: bool = False
    minor: bool = False  # CTAS range reaches 5: mild pain alone makes it 5
    older_adult_risk: bool = False  # high risk from 65 years (syncope rules, non-specific)


# First match wins: the more specific complaint before the general one. Levels per [1].
COMPLAINTS: tuple[ComplaintRule, ...] = (
    ComplaintRule("cardiac arrest / unresponsive", 1, r"arrest|\bcpr\b|unresponsive|apnea"),
    ComplaintRule("altered mental status", 2, r"mental (change|status)|\bams\b|confus|"
                  r"drows|stupor|obtund|letharg|deliri|disorient"),
    ComplaintRule("focal motor deficit (stroke)", 2, r"hemipar|hemipleg|(motor|side|sided|limb)"
                  r" weakness|weakness,? (rt|lt|right|left)|aphasia|monopar|(rt|lt|right|left)\.? "
                  r"(side )?(motor )?weak"),
    ComplaintRule("other neurological symptom", 3, r"dysarthr|slurr|facial (palsy|droop|numb)|"
                  r"numbness|paresthes|parasthes|sensory|amnesia|ataxi|diplopi"),
    ComplaintRule("chest wall / traumatic chest pain", 4, r"chest wall|\bribs?\b"),
    ComplaintRule("chest pain (cardiac until shown otherwise)", 2, r"chest (pain|discomfort|tight|"
                  r"press)|(pain|discomfort),? chest|angina|\bcp\b", central=True),
    ComplaintRule("general weakness", 3, r"weakness|\bweak\b", older_adult_risk=True),
    ComplaintRule("palpitations", 3, r"palpit|heart.{0,10}(racing|pound)|tachycard"),
    ComplaintRule("shortness of breath", 3, r"dyspn|orthopn|short(ness)? of breath|\bsob\b|"
                  r"breath|wheez|stridor", older_adult_risk=True),
    ComplaintRule("syncope / loss of consciousness", 3, r"syncop|faint|\bloc\b|loss of cons|"
                  r"passed out|collaps", older_adult_risk=True),
    ComplaintRule("seizure", 3, r"seiz|convuls|epilep|\bfits?\b"),
    ComplaintRule("dizziness / vertigo", 3, r"dizz|vertigo|\bdz\b|light.?headed"),
    ComplaintRule("upper GI bleeding", 2, r"hematemesis|haematemesis|vomit.{0,12}blood|coffee"),
    ComplaintRule("lower GI bleeding", 3, r"hematochezia|haematochezia|melena|melaena|"
                  r"rectal bleed|blood.{0,12}stool"),
    ComplaintRule("chemical exposure", 2, r"chemical|\bacid\b|alkali"),
    ComplaintRule("epistaxis", 3, r"epistaxis|nose ?bleed"),
    ComplaintRule("haemoptysis", 3, r"hemoptys|haemoptys"),
    ComplaintRule("vaginal bleeding", 3, r"vagina|\bpv\b|spotting"),
    ComplaintRule("suicidal ideation / self-harm", 3, r"suicid|self.?harm|overdose|\bod\b|"
                  r"poison|ingest|depress"),
    ComplaintRule("hyperglycaemia / hypoglycaemia", 3, r"\bbsl\b|glucose|sugar|hypoglyc|"
                  r"hyperglyc|\bdka\b"),
    ComplaintRule("headache", 4, r"headache|\bha\b|head ?ache|migraine", central=True),
    ComplaintRule("abdominal / flank pain", 4, r"abd|abdom|epigastr|flank|\b[rl][ul]q\b|"
                  r"belly|stomach|distension|distended|colic", central=True),
    ComplaintRule("head injury", 4, r"head (trauma|injur)"),
    ComplaintRule("intoxication", 4, r"alcohol|drunk|intoxic|etoh"),
    ComplaintRule("wound / laceration", 4, r"wound|lacerat|\blac\b|\bcut\b|abrasion"),
    ComplaintRule("limb / musculoskeletal pain or injury", 4, r"ankle|knee|\barm\b|\bleg\b|foot|"
                  r"hand|finger|toe\b|wrist|shoulder|elbow|hip\b|thigh|forearm|myalg|sprain|"
                  r"joint|muscle", minor=True),
    ComplaintRule("rash / urticaria", 4, r"rash|urticar|hives", minor=True),
    ComplaintRule("dysuria", 4, r"dysuria|urinary frequency", minor=True),
    ComplaintRule("procedure / administrative visit", 5, r"^for |tube change|prescription|"
                  r"medication|examination|tapping|dressing|certificate|check.?up|lab\b|"
                  r"stitch|suture removal"),
    ComplaintRule("minor skin / ENT complaint", 5, r"itch|hiccup|voice change|scratch|"
                  r"insect bite"),
)  # fmt: skip

# First-order modifiers [1][2], adult values.
SPO2_SEVERE, SPO2_MODERATE, SPO2_MILD = 90, 92, 95  # < 90: 1, < 92: 2, 92-94: 3
SPO2_IMPLAUSIBLE = 50  # an alert patient charted below this: a probe error, re-measured
SBP_COMPROMISE = 90  # haemodynamic compromise: 2
SHOCK_HR = 100  # with SBP < 90 and altered consciousness: shock (end-organ hypoperfusion), 1
HR_BRADY_RED = 40  # NEWS2 red band: haemodynamic compromise, 2
HR_ABNORMAL = (50, 120)  # outside: abnormal vital sign, stable: 3
RR_DISTRESS = (10, 30)  # outside: respiratory distress, 2
SIRS_HR, SIRS_RR = 90, 20  # [3]
FEVER = 38.0  # "T > 38" in [1]; a chart's 38.0 is a rounded reading, counted as fever
FEVER_WORDS = r"fever|febrile|chill|rigor"
SIRS_SEPTIC = 2  # fever + one more SIRS criterion: "looks septic" is not charted, count SIRS
NEWS2_HIGH, NEWS2_MEDIUM = 7, 5  # RCP 2017 response thresholds
HYPOTHERMIA = 35.0  # core temperature below this: 2
SEVERE_PAIN, MODERATE_PAIN = 8, 4  # CTAS ruler: severe 8-10, moderate 4-7, mild < 4
# (severe, moderate, mild) levels per pain site [1]
PAIN_LEVELS = {True: (2, 3, 4), False: (3, 4, 5)}
UNSCORED_PAIN = MODERATE_PAIN  # pain charted present but not scored: moderate until scored
HIGH_RISK_MECHANISM = (
    r"\bmvc\b|\bmva\b|\btai\b|traffic|car accident|pedestrian|motorcycl|fall(en)? from|"
    r"fell from|height|ejected|rollover|stab|gunshot|crush"
)
OLDER_ADULT = 65  # years; with an ambulance arrival, see ComplaintRule.older_adult_risk
URGENT_COMPLAINT = 3  # complaints at this level or more urgent fire by themselves
DEFAULT_LEVEL = 4  # a complaint not in the list, no modifier: less urgent [1]


_COMPLAINT_RX = tuple((rule, re.compile(rule.pattern)) for rule in COMPLAINTS)
_MECHANISM_RX = re.compile(HIGH_RISK_MECHANISM)
_FEVER_RX = re.compile(FEVER_WORDS)


def complaint_rule(complaint: str) -> ComplaintRule | None:
    """The CEDIS-style complaint a KTAS nurse files the chart under (None: not listed)."""
    text = complaint.lower()
    for rule, rx in _COMPLAINT_RX:
        if rx.search(text):
            return rule
    return None


def ktas_reasons(p: Presentation, add: Add) -> tuple[int, str]:
    """Add every KTAS level that fires on the chart as (level, reason); return the level
    the complaint alone gives when nothing fires (CTAS: modifiers decide, the
    complaint's usual level is the default; complaints urgent in themselves — stroke
    symptoms, cardiac-sounding chest pain — fire as a reason)."""
    rule = complaint_rule(p.complaint)
    if rule is not None and rule.level <= URGENT_COMPLAINT:
        add((rule.level, f"complaint: {rule.name}"))
        by_ambulance = p.arrival_mode is ArrivalMode.AMBULANCE
        if rule.older_adult_risk and p.age >= OLDER_ADULT and by_ambulance:
            add((2, f"older adult with {rule.name}"))
    _consciousness(p, add)
    _vitals(p, add)
    _pain(p, rule, add)
    if p.injury and _MECHANISM_RX.search(p.complaint.lower()):
        add((2, "high-risk mechanism of injury"))
    if p.arrival_mode is ArrivalMode.AMBULANCE and all(v is None for v in p.vitals):
        # An ambulance patient whose observations could not be charted at triage went
        # straight to a resuscitation bay: treat as very urgent until measured.
        add((2, "ambulance arrival without observations"))
    if rule is None:
        return DEFAULT_LEVEL, "complaint not in the list, no modifier"
    return rule.level, f"complaint: {rule.name}, no modifier"


def _consciousness(p: Presentation, add: Add) -> None:
    # CTAS bands GCS 3-9 → 1, 10-13 → 2 [1]. AVPU U is GCS 3; P straddles both bands,
    # and is read as 2 (the panel's level for most P charts on the tuning half).
    if p.avpu is AVPU.UNRESPONSIVE:
        add((1, "unresponsive (GCS 3-9)"))
    elif p.avpu is not AVPU.ALERT:
        add((2, "altered conscious level"))


def _vitals(p: Presentation, add: Add) -> None:
    spo2 = p.spo2
    if spo2 is not None and spo2 < SPO2_IMPLAUSIBLE and p.avpu is AVPU.ALERT:
        spo2 = None
        p = replace_unchecked(p, spo2=None)
    if spo2 is not None:
        if spo2 < SPO2_SEVERE:
            add((2, "SpO2 < 90 %"))  # [1] gives 1 with severe distress, not charted here
        elif spo2 < SPO2_MODERATE:
            add((2, "SpO2 < 92 % (moderate respiratory distress)"))
        elif spo2 < SPO2_MILD:
            add((3, "SpO2 92-94 % (mild respiratory distress)"))
    if p.rr is not None and not RR_DISTRESS[0] <= p.rr <= RR_DISTRESS[1]:
        add((2, "respiratory rate outside 10-30"))
    altered = p.avpu is not AVPU.ALERT
    if p.sbp is not None and p.sbp < SBP_COMPROMISE:
        add((2, "haemodynamic compromise (SBP < 90)"))
        if altered and p.hr is not None and p.hr > SHOCK_HR:
            add((1, "shock: hypotension, tachycardia and altered consciousness"))
    if spo2 is not None and spo2 < SPO2_SEVERE and altered:
        add((1, "severe respiratory distress: SpO2 < 90 % with altered consciousness"))
    if p.hr is not None and p.hr <= HR_BRADY_RED:
        add((2, "heart rate <= 40"))
    elif p.hr is not None and not HR_ABNORMAL[0] <= p.hr <= HR_ABNORMAL[1]:
        add((3, "abnormal heart rate, haemodynamically stable"))
    news = news2_of(p).total
    if news >= NEWS2_HIGH:
        add((2, f"NEWS2 {news} (emergency response)"))
    elif news >= NEWS2_MEDIUM:
        add((3, f"NEWS2 {news} (urgent response)"))
    if p.temp is not None and p.temp < HYPOTHERMIA:
        add((2, "hypothermia"))
    measured = p.temp is not None and p.temp >= FEVER
    reported = not measured and bool(_FEVER_RX.search(p.complaint.lower()))
    if measured or reported:
        others = (p.hr is not None and p.hr > SIRS_HR) + (p.rr is not None and p.rr > SIRS_RR)
        # A fever reported but not measured now (antipyretics, chills) counts once another
        # SIRS criterion joins it; "looks septic" [1] is read as fever + SIRS >= 2 [3].
        needed = SIRS_SEPTIC - 1 if measured else SIRS_SEPTIC
        if others >= needed:
            add((2, f"fever ({'measured' if measured else 'reported'}) with {others} more SIRS"))
        elif measured or others:
            add(
                (
                    3,
                    f"fever ({'measured' if measured else 'reported'})"
                    f"{f' with {others} more SIRS' if others else ''}",
                )
            )


def _pain(p: Presentation, rule: ComplaintRule | None, add: Add) -> None:
    central = rule is not None and rule.central
    pain = p.pain
    if pain is None:
        pain = UNSCORED_PAIN
    if pain <= 0:
        return
    severe, moderate, mild = PAIN_LEVELS[central]
    site = "central" if central else "peripheral"
    if pain >= SEVERE_PAIN:
        add((severe, f"severe {site} pain"))
    elif pain >= MODERATE_PAIN:
        add((moderate, f"moderate {site} pain"))
    elif central or (rule is not None and rule.minor):
        add((mild, f"mild {site} pain"))

"""Rule-based triage nurse: MTS discriminators + NEWS2 from what a nurse can see.

:class:`RuleBasedNurse` reads only the nurse-visible part of a
:class:`~envs.clinical.Presentation` — complaint text, flowchart (or, when the chart
has none, one it picks from the complaint, as a nurse does), charted vitals, AVPU,
pain, age, arrival mode, injury and history. It never reads ``presentation_id``,
``indicated_drug``, ``allergies``, the ICU/specialist flags or the self-reported
urgency.

Decision (most urgent wins, as in MTS):

1. **Text discriminators** — phrases of the complaint (and, for risk factors, the
   history) mapped to MTS discriminators (:data:`TEXT_RULES`), some only on certain
   flowcharts; on the chest-pain flowchart pain is taken as cardiac unless the text
   says otherwise (pleuritic, reproducible, post-exertional strain), as MTS teaches.
2. **Vitals** — the MTS / NEWS2 thresholds of the ground truth, each moved towards
   safety by about one measurement standard deviation (:data:`MARGINS`), because the
   chart is noisy and under-triage costs more than over-triage.
3. **Missing data** — a missing pain score is read from the words ("excruciating" →
   severe, unqualified pain → moderate); hypotension without a charted pulse counts as
   shock; a missing SpO2 on a breathing complaint, a missing pulse on palpitations or
   collapse, or an ambulance patient with no observations at all is at least 3.
4. **Time course** — nothing else fired: 5 if the complaint is chronic (months,
   repeat prescription, no symptoms) and nothing recent is mentioned, else 4.

That is the MTS reading (``scale="mts"``, the default; the generated patients' truth).
``RuleBasedNurse(scale="ktas")`` reads real charts triaged on KTAS / CTAS instead
(:mod:`agents.ktas_rules`: central vs peripheral pain, the complaint list of real
charts, SIRS, older adults); the MTS rules above are untouched by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from agents.ktas_rules import ktas_reasons
from envs.clinical.discriminators import ECG_FLOWCHARTS
from envs.clinical.news2 import News2, news2_of
from envs.clinical.presentation import AVPU, ArrivalMode, Flowchart, Intervention, Presentation

F = Flowchart
_ANY: frozenset[Flowchart] = frozenset()  # a rule for every flowchart

# (flowchart, pattern) — first match wins; a nurse's "which chart fits" read of the complaint.
FLOWCHART_RULES: tuple[tuple[Flowchart, str], ...] = (
    (F.MAJOR_TRAUMA, r"\bmph\b|high.speed|car crash|\brtc\b|\bmvc\b|\bmva\b|trapped|ejected|"
     r"hit by an? (car|van|lorry|bus)|knocked off|motorcycl|pedestrian|rollover"),
    (F.BURNS_AND_SCALDS, r"burn|scald|fire\b|smoke|electric|live wire|\bmains\b"),
    (F.OVERDOSE_AND_POISONING, r"overdose|\bod\b|tablets|swallowed|poison|needle|heroin|"
     r"ingest|intoxicat|\betoh\b|alcohol|drunk"),
    (F.MENTAL_ILLNESS, r"suicid|self.harm|end (his|her|my) life|voices|paranoi|low mood|anxiety|"
     r"depress|psychos|jump off|not coping|cutting|\bsi\b|\bhi\b|psych eval"),
    (F.ALLERGY, r"allerg|anaphyla|\bsting|stung|hives|urticaria|angio.?oedema|(lip|lips|tongue|"
     r"face|eyelids).{0,25}swell|swell.{0,25}(lip|lips|tongue|face)"),
    (F.FITS, r"\bfits?\b|fitting|seizure|convuls|epilep"),
    (F.HEAD_INJURY, r"(hit|bump|bang|injur|struck)\w*.{0,15}head|head injur"),
    (F.PREGNANCY, r"pregnan|period.{0,20}late|miscarr"),
    (F.GI_BLEEDING, r"vomit.{0,30}blood|blood.{0,15}vomit|coffee.ground|haematemesis|hematemesis"
     r"|melaena|melena|blood.{0,30}(stool|toilet paper)|rectal bleed|brought up.{0,30}blood"),
    (F.TESTICULAR_PAIN, r"testic|testis|scrot"),
    (F.PALPITATIONS, r"palpitat|heart.{0,15}(racing|skip|pound|flutter|fast)|fluttering|"
     r"racing heart|heartbeat"),
    (F.CHEST_PAIN, r"\bchest\b.{0,40}(pain|pressure|tight|heav|ache|hurt|sitting on|discomfort)"
     r"|(pain|pressure|tight|heav|ache|discomfort).{0,30}\bchest\b|angina|crushing|\bcp\b"),
    (F.ASTHMA, r"asthma|peak flow|inhaler|wheez"),
    (F.SHORTNESS_OF_BREATH, r"breath|dyspn|\bsob\b|can'?t breathe|gasping|cough"),
    (F.HEADACHE, r"headache|migraine|\bha\b"),
    (F.EYE_PROBLEMS, r"\beyes?\b|vision|floaters|conjunctiv|ocular"),
    (F.SORE_THROAT, r"throat|tonsil|swallow|hoarse|quinsy"),
    (F.BACK_PAIN, r"\bback\b"),
    (F.ABDOMINAL_PAIN, r"abdo|\babd\b|tummy|stomach|belly|epigastr|\bloin|groin|pelvic|bowel|"
     r"constipat|\bribs\b"),
    (F.URINARY_PROBLEMS, r"urin|\bwee\b|pass(ing)? water|bladder|cystitis|sexually|chlamydia|"
     r"\bsti\b|\buti\b|dysuria|ha?ematuria"),
    (F.DIARRHOEA_AND_VOMITING, r"vomit|diarrh|loose stool|gastro|being sick|\bn/?v\b"),
    (F.RASHES, r"rash|spots|itch|eczema|cellulitis|scabies|blister|redness"),
    (F.WOUNDS, r"\bcut\b|lacerat|\blac\b|wound|stab|bite|bitten|bleed|dressing|stitches|graze|"
     r"ulcer|abscess"),
    (F.FALLS, r"\bfell\b|\bfall\b|slipped|tripped"),
    (F.LIMB_PROBLEMS, r"ankle|wrist|knee|\bleg\b|\barm\b|hip|calf|foot|hand|shoulder|fractur|"
     r"sprain|\bfx\b"),
    (F.COLLAPSED_ADULT, r"collaps|faint|passed out|black.?out|unresponsive|syncope|rous|\bams\b|"
     r"altered mental|\bloc\b|found "
     r"(on|unresponsive|down)|slurred|weakness|stroke|confus|drowsy|mental change|dizz"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TextRule:
    category: int
    label: str
    pattern: str
    flowcharts: frozenset[Flowchart] = _ANY  # empty: any flowchart
    in_history: bool = False  # also read the history (risk factors, not symptoms)


DEHYDRATION_FLOWCHARTS = (
    F.DIARRHOEA_AND_VOMITING, F.PREGNANCY, F.UNWELL_ADULT, F.ABDOMINAL_PAIN, F.URINARY_PROBLEMS,
)  # fmt: skip


def _r(
    cat: int, label: str, pattern: str, *flowcharts: Flowchart, history: bool = False
) -> TextRule:
    return TextRule(cat, label, pattern, frozenset(flowcharts), history)


TEXT_RULES: tuple[TextRule, ...] = (
    # category 1
    _r(1, "airway compromise", r"drool|can'?t swallow (own |their |his |her )?saliva|gurgl|"
       r"snoring breath|airway (compromise|obstruct)|choking"),
    _r(1, "stridor", r"stridor|noisy breathing|high.pitched breathing|throat closing"),
    _r(1, "inadequate breathing", r"barely breathing|not breathing|agonal|quiet chest|"
       r"silent chest|exhausted|lips (look |are |turning )?blue|cyanos|respiratory arrest"),
    _r(1, "currently fitting", r"fitting (for|and not|now)|continuous seizure|still fitting|"
       r"not stopping|seizing|status epilepticus|ongoing seizure"),
    _r(1, "exsanguinating haemorrhage", r"spurting|pumping|exsanguinat|soaked through|"
       r"massive (bleed|haemorrhage|hemorrhage)"),
    _r(1, "shock", r"cold,? (and )?(clammy|sweaty)|clammy and cold|mottled|(grey|pale),? "
       r"(cold |and )?(clammy|sweaty)|(grey|pale),? cold"),
    _r(1, "unresponsive", r"unresponsive|not rousable|unrousable|no response|unconscious|"
       r"not opening (his |her |their )?eyes|cardiac arrest"),
    # category 2
    _r(2, "pain radiating to the back", r"(through|into|going) (to )?the back|tearing|ripping"),
    _r(2, "abrupt onset headache", r"worst headache|thunderclap|(sudden|abrupt).{0,20}headache|"
       r"hit on the back of the head|came on in seconds"),
    _r(2, "signs of meningism", r"stiff neck|neck stiff|can'?t bend (his |her |my )?neck|"
       r"photophobi|light hurts|hates the light"),
    _r(2, "acute neurological deficit", r"weakness|\bweak\b|slurr|droop|can'?t move|"
       r"numbness between|saddle|words coming out wrong|speech|without noticing|"
       r"can'?t feel when|incontinen|hemipleg|facial palsy"),
    _r(2, "non-blanching rash", r"(don'?t|doesn'?t|not) fade|non.blanching|purpur|like bruises|"
       r"petechia"),
    _r(2, "facial or tongue oedema", r"(lip|lips|tongue|face|eyelids).{0,25}swell|"
       r"swell.{0,25}(lip|lips|tongue|face)|swollen (lips|face|tongue|eyelids)|angio.?oedema"),
    _r(2, "unable to talk in sentences", r"finish sentences|short phrases|few words|"
       r"too breathless to (speak|talk)|unable to (speak|talk)|can only say"),
    _r(2, "vomiting blood", r"vomit.{0,30}blood|blood.{0,15}vomit|coffee.ground|haematemesis|"
       r"hematemesis|brought up.{0,30}blood"),
    _r(2, "heavy PV blood loss", r"heavy.{0,10}bleed|soaking pads|large clots|passing clots|"
       r"bleeding heavily", F.PREGNANCY),
    _r(2, "high-risk mechanism of injury", r"\d+ ?mph|high.speed|thrown|ejected|"
       r"fell \d+ ?(m\b|metres|meters|feet|ft)|"
       r"hit by an? (car|van|lorry|bus)|knocked off|pedestrian|motorbike|motorcycl|rollover|"
       r"trapped|fall from height|(from|off) (a|the) (ladder|roof|height|wall|balcony|scaffold)"),
    _r(2, "impaired distal circulation", r"cold,? (and )?pale|white and numb|no pulse|pulseless|"
       r"can'?t feel the (toes|fingers|foot|hand)"),
    _r(2, "inhalation injury", r"house fire|smoke|soot|burning (flat|building|house)|singed"),
    _r(2, "electrical injury", r"electric|live wire|\bmains\b"),
    _r(2, "large burn", r"both arms|both legs|front of the body|widely|large burn|"
       r"(chest|body|back|trunk).{0,30}(arms|legs)", F.BURNS_AND_SCALDS),
    _r(2, "chemical eye injury", r"(splash|spray)\w*.{0,30}eye|bleach|oven cleaner|acid|alkali|"
       r"chemical"),
    _r(2, "special risk of infection", r"chemo|neutropeni|immunosuppress|transplant|"
       r"on steroids", history=True),
    _r(2, "high lethality", r"paracetamol|amitriptyline|tricyclic|whole (box|bottle)|packets|"
       r"\d\d+ (tablets|pills)|all of (his|her|my|their) \w+ ?(tablets|pills)?|antifreeze|"
       r"digoxin|lithium|iron tablets|heroin|methadone|opioid|weedkiller|paraquat|"
       r"beta.blocker|insulin overdose", F.OVERDOSE_AND_POISONING),
    _r(2, "high risk of self-harm", r"end (his|her|my|their) life|kill (him|her|my|them)self|"
       r"a plan|written a note|jump off|suicid(e|al) (with|plan)|going to (jump|kill)"),
    _r(2, "possible hypothermia", r"cold to (the )?touch|very cold|hypotherm"),
    _r(2, "abnormal pulse (reported)", r"(pulse|heart rate).{0,25}(very slow|slow|\b[1-3]\d\b)"),
    _r(2, "hyperglycaemia with ketosis", r"meter says hi\b|sugars? (very )?(high|hi\b)|ketone|"
       r"sweet.smelling breath|pear drops|kussmaul|breathing deep and fast|\bdka\b"),
    _r(2, "cardiac pain", r"crush|heav(y|iness)|tight|pressure|squeez|elephant|"
       r"(left|right)? ?arm|jaw|clammy|sweat|grey", F.CHEST_PAIN),
    _r(2, "altered conscious level (reported)", r"mental (change|status)|\bams\b|confus|drowsy|"
       r"muddled|"
       r"decreased (consciousness|loc)|altered (mental|conscious)|obtunded|stupor|letharg|"
       r"barely rousable"),
    # category 3
    _r(3, "seizure, recovery not confirmed", r"^(?!.*(back to normal|fully recovered|recovered|"
       r"usual self)).*", F.FITS),
    _r(3, "rectal blood loss", r"melaena|melena|black (tarry )?stools?|rectal bleed|"
       r"haematochezia|hematochezia"),
    _r(3, "pleuritic pain", r"worse (when|on) (breathing|deep breath|coughing)|pleuritic|"
       r"on deep breaths?|on breathing in|breathing in"),
    _r(3, "history of unconsciousness", r"knocked out|black(ed)? ?out|lost consciousness|"
       r"\bloc\b|passed out|unconscious", F.HEAD_INJURY),
    _r(3, "deformity", r"bone (sticking|through)|dinner fork|deform|shortened|turned out|"
       r"rotated|\bbent\b|angulat|open fracture"),
    _r(3, "persistent vomiting", r"vomiting everything|can'?t keep (anything|water|fluids)"
       r" down|vomiting.{0,20}(constantly|all day)|sick constantly|keep vomiting"),
    _r(3, "signs of dehydration", r"dry mouth|hardly passing urine|dizzy on standing|"
       r"lightheaded|light.headed|not passed urine|dehydrat", *DEHYDRATION_FLOWCHARTS),
    _r(3, "uncontrollable minor haemorrhage", r"won'?t stop|keeps (oozing|bleeding)|"
       r"despite press|oozing through"),
    _r(3, "PV bleeding in pregnancy", r"bleed|spotting|blood", F.PREGNANCY),
    _r(3, "urinary retention", r"can'?t pass (water|urine)|unable to (wee|pass urine|pass water)"
       r"|bladder bursting|retention"),
    _r(3, "moderate risk of self-harm", r"thoughts of (self.harm|cutting|harm)|self.harm|"
       r"took .{0,20}(tablets|pills)|overdose|cutting again"),
    _r(3, "disruptive", r"shouting|agitated|aggressive|violent|paranoi|hearing voices"),
    _r(3, "significant history of allergy", r"previous anaphylaxis|had anaphylaxis|epipen",
       history=True),
    _r(3, "low peak flow", r"peak flow (less than half|under half|below half)"),
    _r(3, "high-risk head injury (anticoagulated)", r"warfarin|apixaban|rivaroxaban|"
       r"edoxaban|dabigatran|anticoagul", F.HEAD_INJURY, history=True),
)  # fmt: skip

# Chest pain is cardiac until proven otherwise, unless the words say musculoskeletal.
NON_CARDIAC_CHEST = r"when (i )?press|pressed|twist|lifting|after the gym|tender|on movement"
CHRONIC = (
    r"for (months|years|weeks|ages|a (month|year)|a few (weeks|months|years)|\d+ (weeks|months"
    r"|years))|long.standing|long.term|on and off|ongoing|run out|ran out|repeat prescription|"
    r"wants (a|an|some)? ?(referral|scan|x.ray|blood tests|sick note|check|stronger|cream|drops)"
    r"|sick note|dressing change|stitches|no symptoms|since the (winter|summer|spring|autumn)|"
    r"same as (always|usual)|it is the same|no worse|no change|regular (inhaler|medication|"
    r"tablets)|feels well|for years"
)
RECENT = (
    r"this morning|yesterday|last night|tonight|hours? ago|an hour|minutes? ago|since (this|last)"
    r"|sudden|\b\d+ days?\b|started"
)
PAIN_WORDS = r"pain|ache|aching|sore|hurt|agoni|stinging|cramp|tender"
SEVERE_PAIN_WORDS = (
    r"excruciat|agonis|agoniz|worst|unbearable|severe(ly)? (\w+ ){0,2}(pain|ache|headache)|"
    r"10/10|9/10|8/10|"
    r"rolling around|screaming"
)
MILD_PAIN_WORDS = r"mild|slight|a bit|a little|twinge|niggle|bruised"
RESPIRATORY = frozenset({F.SHORTNESS_OF_BREATH, F.ASTHMA})
PULSE_FLOWCHARTS = frozenset({F.PALPITATIONS, F.COLLAPSED_ADULT})

# Thresholds: the ground truth's, moved towards safety by ~1 measurement SD.
MARGINS = {"hr": 3, "rr": 2, "sbp": 3, "spo2": 2, "temp": 0.3, "news2": 1}
SHOCK_SBP, SHOCK_HR = 90 + MARGINS["sbp"], 100 - MARGINS["hr"]
RR_LIFE_THREAT = (8, 35 - MARGINS["rr"])  # outside [low, high] = life threat
SPO2_LIFE_THREAT = 85 + MARGINS["spo2"]
SPO2_VERY_LOW = 91 + 1  # NEWS2 red is ≤ 91, MTS very low < 90
RED_BANDS = {"hr": (40 + 4, 131 - 5), "rr": (8 + 1, 25), "sbp": 90 + 5, "temp": 35.0 + 0.3}
NEWS2_HIGH = 7 - MARGINS["news2"]
NEWS2_MEDIUM = 5 - MARGINS["news2"]
VERY_HOT, HOT, WARM = 41.0 - 0.3, 38.5 - 0.2, 37.5
SPO2_LOW = 95 + 1
SEVERE_PAIN, MODERATE_PAIN = 8, 5
ASSUMED_PAIN = {"severe": 8, "moderate": 5, "mild": 2}
CARDIAC_AGE = 30  # chest pain with no qualifying words is cardiac from this age
PAIN_LABELS = frozenset({"severe pain", "moderate pain"})
CARDIAC_LABELS = frozenset({"cardiac pain", "possible cardiac pain (unqualified chest pain)"})


@dataclass(frozen=True, slots=True)
class NurseAssessment:
    category: int
    flowchart: Flowchart
    flowchart_inferred: bool
    reasons: tuple[tuple[int, str], ...]  # (category, discriminator) that fired
    news2: News2

    @property
    def deciding(self) -> tuple[str, ...]:
        return tuple(label for cat, label in self.reasons if cat == self.category)

    @property
    def intervention(self) -> Intervention:
        """The protocol intervention (same rules as
        :func:`~envs.clinical.recommended_intervention`) from the nurse's own reasons."""
        deciding = set(self.deciding)
        pain_only = bool(deciding) and deciding <= PAIN_LABELS
        if self.category == 1:
            return Intervention.SEND_TO_RESUS
        if self.category == 2:
            if self.flowchart in ECG_FLOWCHARTS or deciding & CARDIAC_LABELS:
                return Intervention.ORDER_ECG
            return Intervention.GIVE_ANALGESIA if pain_only else Intervention.SEND_TO_MAJORS
        if self.category == 3:
            return (
                Intervention.GIVE_ANALGESIA
                if deciding & PAIN_LABELS
                else Intervention.SEND_TO_MAJORS
            )
        return Intervention.SEND_TO_MINORS if self.category == 4 else Intervention.REFER_TO_GP


SCALES = ("mts", "ktas")
"""Triage scales the nurse reads a chart on: ``mts`` (the default; the generated
patients' ground truth) and ``ktas`` (real KTAS charts: :mod:`agents.ktas_rules`)."""

TEXT_CACHE_SIZE = 8192
"""(complaint, history, flowchart) triples whose text-rule results a nurse keeps (the
library's phrases number a few thousand; free text beyond that is re-scanned)."""

NEGATION = re.compile(r"\b(no|not|nil|denies|without|never)\b[^,.;]{0,15}$")
"""A match is negated when one of these words precedes it within the same clause
("no lip swelling", "no thoughts of harm"); phrases whose match itself carries the
negation ("not breathing", "no response") are unaffected."""


def _affirmed(rx: re.Pattern[str], text: str) -> bool:
    return any(not NEGATION.search(text[: m.start()]) for m in rx.finditer(text))


_FLOWCHART_RX = tuple((f, re.compile(p)) for f, p in FLOWCHART_RULES)


@lru_cache(maxsize=TEXT_CACHE_SIZE)
def infer_flowchart(complaint: str, injury: bool = False) -> Flowchart:
    """The MTS flowchart a nurse would open for this complaint."""
    text = complaint.lower()
    for flowchart, rx in _FLOWCHART_RX:
        if rx.search(text):
            return flowchart
    return F.LIMB_PROBLEMS if injury else F.UNWELL_ADULT


class RuleBasedNurse:
    """Triage from nurse-visible fields only. ``triage(p)`` → category 1–5."""

    name = "rule_based_nurse"

    def __init__(self, scale: str = "mts") -> None:
        if scale not in SCALES:
            raise ValueError(f"scale={scale!r}: choose one of {SCALES}")
        self.scale = scale
        self._rules = [(r, re.compile(r.pattern)) for r in TEXT_RULES]
        self._chronic = re.compile(CHRONIC)
        self._recent = re.compile(RECENT)
        # The text rules read only the complaint, the history and the flowchart, and
        # generated patients reuse their templates' phrases: memoise the ~40 regex scans.
        self._text_reasons = lru_cache(maxsize=TEXT_CACHE_SIZE)(self._match_text)

    def _match_text(
        self, complaint: str, history: str, flowchart: Flowchart
    ) -> tuple[tuple[int, str], ...]:
        """(category, label) of every text rule that fires, in rule order."""
        both = f"{complaint} {history}"
        out = []
        for rule, rx in self._rules:
            if rule.flowcharts and flowchart not in rule.flowcharts:
                continue
            if _affirmed(rx, both if rule.in_history else complaint):
                out.append((rule.category, rule.label))
        return tuple(out)

    def triage(self, p: Presentation) -> int:
        return self.assess(p).category

    def triage_many(self, presentations: list[Presentation]) -> list[int]:
        return [self.triage(p) for p in presentations]

    def decide(self, p: Presentation) -> tuple[int, Intervention]:
        """Category and protocol intervention, e.g. for ``NurseSim-Triage-v0``."""
        a = self.assess(p)
        return a.category, a.intervention

    def assess(self, p: Presentation) -> NurseAssessment:
        if self.scale == "ktas":
            return self._assess_ktas(p)
        complaint = p.complaint.lower()
        history = p.history.lower()
        inferred = p.flowchart is None
        flowchart = infer_flowchart(complaint, p.injury) if inferred else p.flowchart
        reasons: list[tuple[int, str]] = list(self._text_reasons(complaint, history, flowchart))
        add = reasons.append
        if flowchart is F.CHEST_PAIN and not any(label == "cardiac pain" for _, label in reasons):
            qualified = re.search(NON_CARDIAC_CHEST, complaint) or any(
                label == "pleuritic pain" for _, label in reasons
            )
            if not qualified and p.age >= CARDIAC_AGE:
                add((2, "possible cardiac pain (unqualified chest pain)"))

        score = news2_of(p)
        self._vitals(p, score, add)

        pain = p.pain
        if pain is None and re.search(PAIN_WORDS, complaint):
            if re.search(SEVERE_PAIN_WORDS, complaint):
                pain = ASSUMED_PAIN["severe"]
            elif re.search(MILD_PAIN_WORDS, complaint):
                pain = ASSUMED_PAIN["mild"]
            else:  # unscored pain: assume moderate until it can be scored
                pain = ASSUMED_PAIN["moderate"]
        if pain is not None and pain >= SEVERE_PAIN:
            add((2, "severe pain"))
        elif pain is not None and pain >= MODERATE_PAIN:
            add((3, "moderate pain"))

        if p.hr is None and flowchart in PULSE_FLOWCHARTS:
            add((3, "pulse not recorded on a palpitations / collapse complaint"))
        if p.spo2 is None and flowchart in RESPIRATORY:
            add((3, "SpO2 not recorded on a breathing complaint"))
        if p.arrival_mode is ArrivalMode.AMBULANCE and all(v is None for v in p.vitals):
            add((3, "ambulance arrival without observations"))

        if not reasons:
            chronic = self._chronic.search(complaint) and not self._recent.search(complaint)
            if chronic and (pain is None or pain == 0 or pain < MODERATE_PAIN):
                add((5, "chronic problem, no discriminator"))
            else:
                add((4, "recent problem" if not pain else "recent mild pain"))
        category = min(cat for cat, _ in reasons)
        reasons.sort(key=lambda r: r[0])
        return NurseAssessment(category, flowchart, inferred, tuple(reasons), score)

    @staticmethod
    def _assess_ktas(p: Presentation) -> NurseAssessment:
        """The KTAS reading of a chart (:mod:`agents.ktas_rules`)."""
        reasons: list[tuple[int, str]] = []
        default = ktas_reasons(p, reasons.append)
        if not reasons:
            reasons.append(default)
        reasons.sort(key=lambda r: r[0])
        flowchart = p.flowchart or infer_flowchart(p.complaint.lower(), p.injury)
        return NurseAssessment(
            reasons[0][0], flowchart, p.flowchart is None, tuple(reasons), news2_of(p)
        )

    @staticmethod
    def _vitals(p: Presentation, score: News2, add: Callable[[tuple[int, str]], None]) -> None:
        hr, rr, sbp, spo2, temp = p.hr, p.rr, p.sbp, p.spo2, p.temp
        altered = p.avpu is not AVPU.ALERT
        if p.avpu is AVPU.UNRESPONSIVE:
            add((1, "unresponsive"))
        elif altered:
            add((2, "altered conscious level"))
        # Hypotension with no pulse charted is treated as shock until the pulse is known.
        if sbp is not None and sbp < SHOCK_SBP and (hr is None or hr > SHOCK_HR or altered):
            add((1, "shock (hypotension with tachycardia)"))
        if rr is not None and not RR_LIFE_THREAT[0] <= rr <= RR_LIFE_THREAT[1]:
            add((1, "inadequate breathing (respiratory rate)"))
        if spo2 is not None and spo2 < SPO2_LIFE_THREAT:
            add((1, "life-threatening hypoxaemia"))
        if spo2 is not None and spo2 < SPO2_VERY_LOW:
            add((2, "very low SpO2"))
        elif spo2 is not None and spo2 < SPO2_LOW:
            add((3, "low SpO2"))
        red = (
            (hr is not None and not RED_BANDS["hr"][0] < hr < RED_BANDS["hr"][1])
            or (rr is not None and not RED_BANDS["rr"][0] < rr < RED_BANDS["rr"][1])
            or (sbp is not None and sbp <= RED_BANDS["sbp"])
            or (temp is not None and temp <= RED_BANDS["temp"])
        )
        if red or score.red_score:
            add((2, "NEWS2 red parameter"))
        if score.total >= NEWS2_HIGH:
            add((2, f"NEWS2 {score.total}"))
        elif score.total >= NEWS2_MEDIUM:
            add((3, f"NEWS2 {score.total}"))
        if temp is not None:
            if temp >= VERY_HOT:
                add((2, "very hot"))
            elif temp >= HOT:
                add((3, "hot"))
            elif temp >= WARM:
                add((4, "warm"))

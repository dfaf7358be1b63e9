"""What a triage nurse is handed: the :class:`Presentation` record and its enums.

A :class:`Presentation` is one *charted* patient: the complaint in free text, the
observations as measured (noisy, possibly missing), and the background a nurse can
ask about. The hidden truth (noiseless state, MTS category) lives elsewhere
(:mod:`envs.clinical.generator`), so a policy handed a ``Presentation`` cannot peek.

Enums accept the spellings found in real charts (``"walk-in"``, ``"Alert"``,
``"male"``, ``"Chest pain"`` …) and the dataclass coerces strings on construction,
so records loaded from CSV/JSON can be built with plain strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


class _ParseEnum(str, Enum):
    """A string enum that also parses names and loose spellings (``"Walk-in"``)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        key = _norm(value)
        for member in cls:
            if key in (_norm(member.value), member.name.lower(), *_ALIASES.get(member, ())):
                return member
        return None


_ALIASES: dict[Enum, tuple[str, ...]] = {}


class ArrivalMode(_ParseEnum):
    WALK_IN = "walk_in"
    AMBULANCE = "ambulance"
    OTHER = "other"  # police, helicopter, inter-hospital transfer …


class Sex(_ParseEnum):
    MALE = "M"
    FEMALE = "F"


class AVPU(_ParseEnum):
    """Conscious level. NEWS2 (RCP 2017) charts ACVPU: ``C`` is *new* confusion."""

    ALERT = "A"
    CONFUSED = "C"
    VOICE = "V"
    PAIN = "P"
    UNRESPONSIVE = "U"

    @property
    def alert(self) -> bool:
        return self is AVPU.ALERT


class Flowchart(_ParseEnum):
    """Manchester Triage System presentation flowcharts used by the library."""

    CHEST_PAIN = "chest_pain"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    ASTHMA = "asthma"
    ABDOMINAL_PAIN = "abdominal_pain"
    HEADACHE = "headache"
    COLLAPSED_ADULT = "collapsed_adult"
    FITS = "fits"
    ALLERGY = "allergy"
    OVERDOSE_AND_POISONING = "overdose_and_poisoning"
    HEAD_INJURY = "head_injury"
    LIMB_PROBLEMS = "limb_problems"
    WOUNDS = "wounds"
    BURNS_AND_SCALDS = "burns_and_scalds"
    BACK_PAIN = "back_pain"
    URINARY_PROBLEMS = "urinary_problems"
    TESTICULAR_PAIN = "testicular_pain"
    PREGNANCY = "pregnancy"
    DIARRHOEA_AND_VOMITING = "diarrhoea_and_vomiting"
    GI_BLEEDING = "gi_bleeding"
    RASHES = "rashes"
    SORE_THROAT = "sore_throat"
    MENTAL_ILLNESS = "mental_illness"
    FALLS = "falls"
    UNWELL_ADULT = "unwell_adult"
    PALPITATIONS = "palpitations"
    EYE_PROBLEMS = "eye_problems"
    MAJOR_TRAUMA = "major_trauma"

    @property
    def label(self) -> str:
        """Human-readable name ("chest pain")."""
        return self.value.replace("_", " ")


class Drug(_ParseEnum):
    """Time-critical ED drugs. An allergy entry names the drug it forbids.

    ``IV_ANTIBIOTICS`` is the first-line broad-spectrum regimen, penicillin-based
    (e.g. piperacillin–tazobactam), so an ``IV_ANTIBIOTICS`` allergy is a penicillin
    allergy. Indications follow NICE / Resuscitation Council UK (see docs/clinical.md).
    """

    ADRENALINE = "adrenaline"  # IM 500 micrograms, anaphylaxis (RCUK 2021)
    IV_ANTIBIOTICS = "iv_antibiotics"  # sepsis within 1 h (NICE NG51), neutropenic (NG151)
    ASPIRIN = "aspirin"  # 300 mg, suspected ACS (NICE CG95 / NG185)
    SALBUTAMOL_NEBULISER = "salbutamol_nebuliser"  # acute asthma / COPD (BTS/SIGN 158)
    MORPHINE = "morphine"  # IV opioid for severe pain
    PARACETAMOL = "paracetamol"
    IBUPROFEN = "ibuprofen"  # NSAID, first line in renal colic (NICE NG118)
    NALOXONE = "naloxone"  # opioid toxicity with respiratory depression
    ACETYLCYSTEINE = "acetylcysteine"  # paracetamol overdose
    GLUCOSE = "glucose"  # hypoglycaemia
    MIDAZOLAM = "midazolam"  # benzodiazepine for status epilepticus (NICE NG217)
    ONDANSETRON = "ondansetron"  # antiemetic
    CHLORPHENAMINE = "chlorphenamine"  # antihistamine, urticaria / angio-oedema
    TRANEXAMIC_ACID = "tranexamic_acid"  # major trauma haemorrhage (NICE NG39, CRASH-2)
    INSULIN = "insulin"  # fixed-rate IV insulin, DKA (JBDS)


class Intervention(_ParseEnum):
    """The seven NurseSim interventions, in action-index order."""

    SEND_TO_RESUS = "send_to_resus"
    SEND_TO_MAJORS = "send_to_majors"
    SEND_TO_MINORS = "send_to_minors"
    ORDER_ECG = "order_ecg"
    GIVE_ANALGESIA = "give_analgesia"
    DISCHARGE = "discharge"
    REFER_TO_GP = "refer_to_gp"

    @property
    def action_index(self) -> int:
        """Position in the NurseSim action (``action[1]``)."""
        return INTERVENTIONS.index(self)


INTERVENTIONS: tuple[Intervention, ...] = tuple(Intervention)

_ALIASES.update(
    {
        ArrivalMode.WALK_IN: ("walk", "walkin", "self", "self_presented", "on_foot"),
        ArrivalMode.AMBULANCE: ("ems", "paramedic", "paramedics", "999", "911"),
        Sex.MALE: ("male", "man"),
        Sex.FEMALE: ("female", "woman"),
        AVPU.ALERT: ("alert",),
        AVPU.CONFUSED: ("confused", "confusion", "new_confusion"),
        AVPU.VOICE: ("voice", "verbal", "verbal_response"),
        AVPU.PAIN: ("pain", "pain_response"),
        AVPU.UNRESPONSIVE: ("unresponsive", "unresponse", "unresponsiveness"),
    }
)

VITAL_FIELDS = ("hr", "rr", "sbp", "dbp", "spo2", "temp")
"""The numeric observations, in the order every encoding uses."""


def _coerce(enum: type[Enum], value: Any, field: str) -> Any:
    if value is None or isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum)  # type: ignore[attr-defined]
        raise ValueError(f"{field}={value!r} is not one of: {choices}") from None


FAHRENHEIT_ABOVE = 50.0
"""A charted temperature above this cannot be °C: it is read as °F (US charts)."""
PAIN_MAX = 10
_FIRST_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _coerce_temp(value: Any) -> float | None:
    t = _coerce_number(value, "temp")
    if t is not None and t > FAHRENHEIT_ABOVE:
        t = round((t - 32.0) * 5.0 / 9.0, 1)
    return t


def _coerce_pain(value: Any) -> float | None:
    """Charted pain is often free text: "7/10" → 7, "8-9" → 8, "unable"/"UTA" → None
    (not scored); a number above 10 is read as 10 (safer than dropping it)."""
    if isinstance(value, str):
        m = _FIRST_NUMBER.search(value)
        value = float(m.group()) if m else None
    pain = _coerce_number(value, "pain")
    if pain is not None and pain < 0:
        raise ValueError(f"pain={value!r} must be in 0..{PAIN_MAX}")
    return None if pain is None else min(pain, PAIN_MAX)


def _coerce_urgency(value: Any) -> int | None:
    """1..5, or None (not asked / not charted; NaN from a loaded table counts as None)."""
    u = _coerce_number(value, "self_reported_urgency")
    if u is None:
        return None
    if not 1 <= u <= 5 or u != int(u):
        raise ValueError(f"self_reported_urgency={value!r} not in 1..5 (or None: not charted)")
    return int(u)


def _coerce_number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}={value!r} is not a number") from None
    return None if math.isnan(x) else x  # NaN in a loaded chart means "not measured"


@dataclass(frozen=True, slots=True)
class Presentation:
    """One charted ED patient at triage: what the triage nurse sees, plus the hidden
    ``presentation_id`` and the pharmacist/consultant flags.

    Vitals, ``pain`` and ``flowchart`` may be ``None`` (not measured / not chosen).
    ``temp`` is in °C (a charted value above 50 is taken as °F and converted),
    ``spo2`` in % on air, ``sbp``/``dbp`` in mmHg, ``hr`` and
    ``rr`` per minute; ``pain`` 0–10 (free text such as "7/10" is parsed, "unable" is
    None); ``self_reported_urgency`` 1 (I think I'm dying) to 5 (not urgent), or
    ``None`` where the chart does not record one (real charts do not). ``complaint`` is
    free text as charted (abbreviations such as "abd pain, Lt" are fine), ``history``
    may be empty. ``allergies`` is a tuple of :class:`Drug`.
    """

    presentation_id: str
    age: int
    sex: Sex
    arrival_mode: ArrivalMode
    injury: bool
    complaint: str
    flowchart: Flowchart | None
    history: str
    hr: float | None
    rr: float | None
    sbp: float | None
    dbp: float | None
    spo2: float | None
    temp: float | None
    avpu: AVPU
    pain: int | None
    self_reported_urgency: int | None = None
    allergies: tuple[Drug, ...] = ()
    indicated_drug: Drug | None = None
    needs_icu: bool = False
    needs_specialist: bool = False

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "sex", _coerce(Sex, self.sex, "sex"))
        s(self, "arrival_mode", _coerce(ArrivalMode, self.arrival_mode, "arrival_mode"))
        s(self, "flowchart", _coerce(Flowchart, self.flowchart, "flowchart"))
        s(self, "avpu", _coerce(AVPU, self.avpu, "avpu") or AVPU.ALERT)
        s(self, "indicated_drug", _coerce(Drug, self.indicated_drug, "indicated_drug"))
        s(self, "allergies", tuple(_coerce(Drug, a, "allergies") for a in self.allergies))
        for name in VITAL_FIELDS:
            s(self, name, _coerce_number(getattr(self, name), name))
        s(self, "temp", _coerce_temp(self.temp))
        pain = _coerce_pain(self.pain)
        s(self, "pain", None if pain is None else round(pain))
        s(self, "self_reported_urgency", _coerce_urgency(self.self_reported_urgency))
        s(self, "age", int(self.age))
        s(self, "injury", bool(self.injury))
        s(self, "complaint", str(self.complaint or ""))
        s(self, "history", str(self.history or ""))

    @property
    def vitals(self) -> tuple[float | None, ...]:
        return tuple(getattr(self, f) for f in VITAL_FIELDS)


_PRESENTATION_FIELDS = tuple(f.name for f in fields(Presentation))
_set = object.__setattr__


def presentation_unchecked(**values: Any) -> Presentation:
    """Internal fast path (generators): a :class:`Presentation` from values that are
    already canonical — exactly what ``__post_init__`` would leave unchanged (enum
    members, float vitals, int pain/age/urgency in range, bool injury, str texts) —
    without re-running the coercion. Every field must be given."""
    p = object.__new__(Presentation)
    for name in _PRESENTATION_FIELDS:
        _set(p, name, values[name])
    return p


def replace_unchecked(p: Presentation, **changes: Any) -> Presentation:
    """``dataclasses.replace`` for canonical ``changes`` (see :func:`presentation_unchecked`)."""
    q = object.__new__(Presentation)
    for name in _PRESENTATION_FIELDS:
        _set(q, name, changes[name] if name in changes else getattr(p, name))
    return q


_ARRIVAL_TEXT = {
    ArrivalMode.WALK_IN: "walked in",
    ArrivalMode.AMBULANCE: "arrived by ambulance",
    ArrivalMode.OTHER: "arrived by other transport",
}
_SEX_TEXT = {Sex.MALE: "male", Sex.FEMALE: "female"}
NOT_RECORDED = "not recorded"


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return NOT_RECORDED
    return f"{value:.{digits}f}{unit}"


def format_observations(p: Presentation) -> str:
    """The charted observations as one line, ``not recorded`` for missing values."""
    bp = NOT_RECORDED if p.sbp is None or p.dbp is None else f"{p.sbp:.0f}/{p.dbp:.0f}"
    pain = NOT_RECORDED if p.pain is None else f"{p.pain}/10"
    return (
        f"HR {_fmt(p.hr)}, RR {_fmt(p.rr)}, BP {bp}, "
        f"SpO2 {_fmt(p.spo2, '%')}{'' if p.spo2 is None else ' on air'}, "
        f"Temp {_fmt(p.temp, ' C', 1)}, AVPU {p.avpu.value}, pain {pain}"
    )


def format_presentation(p: Presentation) -> str:
    """The nurse-visible card (no id, no category, no pharmacist/consultant flags)."""
    allergies = ", ".join(a.value for a in p.allergies) or "none known"
    lines = [
        f"Patient: {p.age}-year-old {_SEX_TEXT[p.sex]}, {_ARRIVAL_TEXT[p.arrival_mode]}"
        f"{', injury' if p.injury else ''}.",
        f"Complaint: {p.complaint}",
    ]
    if p.flowchart is not None:
        lines.append(f"Flowchart: {p.flowchart.label}")
    lines += [
        f"History: {p.history or 'nil of note'}",
        f"Observations: {format_observations(p)}",
        f"Allergies: {allergies}",
    ]
    if p.self_reported_urgency is not None:  # real charts have none: no line, not a guess
        lines.append(f"Self-reported urgency: {p.self_reported_urgency}/5")
    return "\n".join(lines)

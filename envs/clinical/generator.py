"""Seeded patient generator: template → true clinical state → ground truth → chart.

One draw, in this order (all from one ``numpy.random.Generator``):

1. **Template** — uniformly among the presentations of the subset whose *nominal*
   state falls in the target category (the target comes from the category mix, or
   from the caller).
2. **True state** — vitals = nominal + a correlated between-patient deviation
   (multivariate normal with :data:`VITAL_CORRELATION` and :data:`PATIENT_SD`,
   scaled by the template's ``spread``), clipped to :data:`PHYSIOLOGICAL_RANGE` and
   rounded as charted; pain uniform in the template's range; AVPU and findings as in
   the template.
3. **Ground truth** — :func:`~envs.clinical.discriminators.ground_truth_category` on
   the true state. If it differs from the target the draw is rejected and redrawn
   (rejection sampling: the label is always computed, never assigned).
4. **Chart** — every vital gets independent measurement error
   (:data:`MEASUREMENT_SD`), is clipped and rounded (integers; temperature to 0.1 °C);
   then each vital, the pain score and the flowchart go missing with the
   :class:`ChartingConfig` probabilities. Pain and AVPU are charted as assessed.
5. **Background** — age, sex, arrival mode, complaint phrasing, history, allergies
   (:data:`ALLERGY_PREVALENCE`) and the self-reported urgency (true category plus
   :data:`SELF_REPORT_OFFSETS`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from envs.clinical.discriminators import (
    ClinicalState,
    Discriminator,
    GroundTruth,
    ground_truth_category,
    recommended_intervention,
)
from envs.clinical.library import LIBRARY, PresentationTemplate
from envs.clinical.presentation import (
    AVPU,
    VITAL_FIELDS,
    ArrivalMode,
    Drug,
    Flowchart,
    Intervention,
    Presentation,
    Sex,
    presentation_unchecked,
)
from envs.types import Severity

DEFAULT_CATEGORY_MIX: tuple[float, ...] = (0.05, 0.15, 0.35, 0.35, 0.10)
"""Share of categories 1–5 (a typical UK ED case mix: few immediate, most 3–4)."""

# Between-patient spread of (hr, rr, sbp, dbp, spo2, temp) around a template.
PATIENT_SD = np.array([8.0, 2.0, 10.0, 7.0, 1.0, 0.3])
# Charting (measurement) error: pulse counts, RR counted over 15 s, cuff BP, probe.
MEASUREMENT_SD = np.array([3.0, 2.0, 6.0, 5.0, 1.0, 0.2])
# Physiological correlation of the deviations: fever raises pulse (~10/min per °C)
# and RR; compensation raises pulse as pressure falls; tachypnoea goes with low SpO2.
VITAL_CORRELATION = np.array(
    [
        # hr    rr    sbp   dbp  spo2  temp
        [1.0, 0.4, -0.2, -0.1, -0.2, 0.4],
        [0.4, 1.0, -0.1, 0.0, -0.4, 0.2],
        [-0.2, -0.1, 1.0, 0.7, 0.1, 0.0],
        [-0.1, 0.0, 0.7, 1.0, 0.0, 0.0],
        [-0.2, -0.4, 0.1, 0.0, 1.0, -0.1],
        [0.4, 0.2, 0.0, 0.0, -0.1, 1.0],
    ]
)
_CHOLESKY = np.linalg.cholesky(VITAL_CORRELATION)  # fails loudly if not positive definite
PHYSIOLOGICAL_RANGE: dict[str, tuple[float, float]] = {
    "hr": (20, 250), "rr": (3, 60), "sbp": (40, 260), "dbp": (20, 160),
    "spo2": (50, 100), "temp": (30.0, 43.0),
}  # fmt: skip
MIN_PULSE_PRESSURE = 10  # mmHg: diastolic is kept at least this far below systolic
TEMP_DECIMALS = 1

# P(self-reported urgency = true category + offset), clipped to 1..5.
SELF_REPORT_OFFSETS: dict[int, float] = {-2: 0.05, -1: 0.15, 0: 0.55, 1: 0.20, 2: 0.05}
ALLERGY_PREVALENCE: dict[Drug, float] = {
    Drug.IV_ANTIBIOTICS: 0.08,  # penicillin allergy label, ~10 % of UK patients
    Drug.IBUPROFEN: 0.02,
    Drug.MORPHINE: 0.02,
    Drug.ASPIRIN: 0.01,
}
P_OTHER_ARRIVAL = 0.05  # of non-ambulance arrivals: police, helicopter, transfer
DEFAULT_MAX_TRIES = 200
_N_VITALS = len(VITAL_FIELDS)
_ALLERGY_ITEMS = tuple(ALLERGY_PREVALENCE.items())


@dataclass(frozen=True, slots=True)
class ChartingConfig:
    """How incomplete the chart is. ``p_missing_vital`` applies to each vital alone."""

    p_missing_vital: float = 0.03
    p_missing_pain: float = 0.05
    p_missing_flowchart: float = 0.10
    measurement_noise: bool = True

    def __post_init__(self) -> None:
        for name in ("p_missing_vital", "p_missing_pain", "p_missing_flowchart"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)!r}")


REALISTIC_CHARTING = ChartingConfig()
COMPLETE_CHARTING = ChartingConfig(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class GeneratedPatient:
    """A charted presentation with its hidden truth."""

    presentation: Presentation  # what the nurse sees
    state: ClinicalState  # noiseless truth
    truth: GroundTruth
    template: PresentationTemplate

    @property
    def category(self) -> Severity:
        return self.truth.category

    @property
    def discriminators(self) -> tuple[Discriminator, ...]:
        return self.truth.discriminators

    @property
    def presentation_id(self) -> str:
        return self.template.presentation_id

    @property
    def recommended_intervention(self) -> Intervention:
        return recommended_intervention(
            self.category, self.template.flowchart, self.truth.discriminators
        )


_VITAL_CLIP = tuple(PHYSIOLOGICAL_RANGE[name] for name in VITAL_FIELDS)
_TEMP_INDEX = VITAL_FIELDS.index("temp")


def _round_vitals(values: np.ndarray) -> list[float]:
    # Plain-float clip (same values as ``np.clip`` on finite floats, ~10x cheaper).
    out = []
    for i, (v, (lo, hi)) in enumerate(zip(values.tolist(), _VITAL_CLIP, strict=True)):
        v = float(lo) if v < lo else float(hi) if v > hi else v
        out.append(round(v, TEMP_DECIMALS) if i == _TEMP_INDEX else float(round(v)))
    sbp, dbp = out[2], out[3]
    out[3] = max(PHYSIOLOGICAL_RANGE["dbp"][0], min(dbp, sbp - MIN_PULSE_PRESSURE))
    return out


def _cdf(p: np.ndarray) -> list[float]:
    """The cumulative weights ``Generator.choice(..., p=p)`` searches (same floats)."""
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf.tolist()


def _choice_index(rng: np.random.Generator, cdf: list[float]) -> int:
    """``rng.choice(len(cdf), p=p)`` without its per-call overhead: the same single
    ``rng.random()`` draw and the same right-sided search, so the same index."""
    return bisect_right(cdf, rng.random())


@dataclass(frozen=True, slots=True)
class _Compiled:
    """Per-template data :meth:`PatientGenerator.from_template` needs on every draw."""

    template: PresentationTemplate
    vitals: np.ndarray
    trusted: bool  # every field already canonical: build Presentation without coercion


def _canonical(t: PresentationTemplate) -> bool:
    return (
        isinstance(t.avpu, AVPU)
        and isinstance(t.flowchart, Flowchart)
        and (t.sex is None or isinstance(t.sex, Sex))
        and (t.indicated_drug is None or isinstance(t.indicated_drug, Drug))
        and type(t.injury) is bool
        and all(type(c) is str and c for c in t.complaints)
        and all(type(h) is str for h in t.histories)
    )


_COMPILED: dict[int, _Compiled] = {}


def _compiled(template: PresentationTemplate) -> _Compiled:
    c = _COMPILED.get(id(template))
    if c is None or c.template is not template:
        c = _Compiled(template, np.asarray(template.vitals), _canonical(template))
        _COMPILED[id(template)] = c
    return c


def _normalise_mix(mix: Sequence[float] | Mapping[int, float]) -> np.ndarray:
    if isinstance(mix, Mapping):
        weights = np.array([float(mix.get(c, 0.0)) for c in range(1, 6)])
    else:
        weights = np.asarray(list(mix), dtype=float)
    if weights.shape != (5,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"category_mix needs 5 non-negative weights (categories 1-5), got {mix}")
    return weights / weights.sum()


class PatientGenerator:
    """Seeded generator of charted ED patients with computed ground truth.

    Args:
        seed: an int, a ``numpy.random.Generator`` (used as is), or None (fresh entropy).
        category_mix: weights of categories 1–5 (default 5/15/35/35/10 %).
        presentation_ids: restrict to these templates (train/test splits).
        charting: missingness and measurement-noise settings.
        library: the templates to draw from (default :data:`~envs.clinical.library.LIBRARY`).
        max_tries: redraws allowed before a conditioned draw gives up.
    """

    def __init__(
        self,
        seed: int | np.random.Generator | None = None,
        *,
        category_mix: Sequence[float] | Mapping[int, float] = DEFAULT_CATEGORY_MIX,
        presentation_ids: Iterable[str] | None = None,
        charting: ChartingConfig = REALISTIC_CHARTING,
        library: Sequence[PresentationTemplate] = LIBRARY,
        max_tries: int = DEFAULT_MAX_TRIES,
    ) -> None:
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        by_id = {t.presentation_id: t for t in library}
        if presentation_ids is None:
            templates = list(library)
        else:
            ids = list(dict.fromkeys(presentation_ids))
            unknown = [i for i in ids if i not in by_id]
            if unknown:
                raise KeyError(f"unknown presentation ids: {unknown}")
            templates = [by_id[i] for i in ids]
        if not templates:
            raise ValueError("no presentations to draw from")
        self.templates: tuple[PresentationTemplate, ...] = tuple(templates)
        self.by_category: dict[Severity, tuple[PresentationTemplate, ...]] = {
            c: tuple(t for t in templates if t.nominal_category == c) for c in Severity
        }
        self.category_mix = _normalise_mix(category_mix)
        lacking = [c for c in Severity if self.category_mix[c - 1] > 0 and not self.by_category[c]]
        if lacking:
            raise ValueError(
                f"the presentation subset has no template of categories {[int(c) for c in lacking]}"
                " but category_mix gives them weight"
            )
        self.charting = charting
        self.max_tries = max_tries
        self._offsets = np.array(list(SELF_REPORT_OFFSETS))
        self._offset_p = np.array(list(SELF_REPORT_OFFSETS.values()))
        self._offset_values = [int(o) for o in self._offsets]
        self._offset_cdf = _cdf(self._offset_p)
        self._mix_cdf = _cdf(self.category_mix)

    @property
    def presentation_ids(self) -> tuple[str, ...]:
        return tuple(t.presentation_id for t in self.templates)

    def sample(self, category: int | Severity | None = None) -> GeneratedPatient:
        """One patient; of true ``category`` if given, else drawn from the mix."""
        if category is None:
            target = Severity(_choice_index(self.rng, self._mix_cdf) + 1)
        else:
            target = Severity(int(category))
        candidates = self.by_category[target]
        if not candidates:
            raise ValueError(f"no presentation of category {int(target)} in this subset")
        for _ in range(self.max_tries):
            template = candidates[int(self.rng.integers(len(candidates)))]
            patient = self.from_template(template)
            if patient.category == target:
                return patient
        raise RuntimeError(f"no category-{int(target)} draw in {self.max_tries} tries")

    def sample_many(self, n: int, category: int | Severity | None = None) -> list[GeneratedPatient]:
        return [self.sample(category) for _ in range(n)]

    def from_template(self, template: PresentationTemplate | str) -> GeneratedPatient:
        """One unconditioned draw from a template (its category may differ from nominal)."""
        if isinstance(template, str):
            template = next(t for t in self.templates if t.presentation_id == template)
        rng = self.rng
        compiled = _compiled(template)
        deviation = _CHOLESKY @ rng.standard_normal(_N_VITALS)
        true_vitals = _round_vitals(compiled.vitals + deviation * PATIENT_SD * template.spread)
        lo, hi = template.pain
        pain = int(rng.integers(lo, hi + 1))
        age = int(rng.integers(template.age[0], template.age[1] + 1))
        state = ClinicalState(
            template.flowchart, age, *true_vitals, avpu=template.avpu, pain=pain,
            findings=template.findings, chronic=template.chronic,
        )  # fmt: skip
        truth = ground_truth_category(state)

        charting = self.charting
        noise = rng.standard_normal(_N_VITALS) * MEASUREMENT_SD
        if not charting.measurement_noise:
            noise[:] = 0.0
        charted: list[float | None] = _round_vitals(np.asarray(true_vitals) + noise)
        missing = (rng.random(_N_VITALS) < charting.p_missing_vital).tolist()
        if True in missing:
            charted = [None if m else v for v, m in zip(charted, missing, strict=True)]
        charted_pain = None if rng.random() < charting.p_missing_pain else pain
        flowchart = None if rng.random() < charting.p_missing_flowchart else template.flowchart

        if template.sex is not None:
            sex = template.sex
        else:
            sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
        if rng.random() < template.p_ambulance:
            arrival = ArrivalMode.AMBULANCE
        else:
            arrival = ArrivalMode.OTHER if rng.random() < P_OTHER_ARRIVAL else ArrivalMode.WALK_IN
        complaint = template.complaints[int(rng.integers(len(template.complaints)))]
        history = template.histories[int(rng.integers(len(template.histories)))]
        allergy_draws = rng.random(len(ALLERGY_PREVALENCE)).tolist()
        allergies = tuple(
            d for (d, p), u in zip(_ALLERGY_ITEMS, allergy_draws, strict=True) if u < p
        )
        offset = self._offset_values[_choice_index(rng, self._offset_cdf)]
        reported = min(max(int(truth.category) + offset, 1), 5)

        kw = dict(
            presentation_id=template.presentation_id, age=age, sex=sex, arrival_mode=arrival,
            injury=template.injury, complaint=complaint, flowchart=flowchart, history=history,
            hr=charted[0], rr=charted[1], sbp=charted[2], dbp=charted[3], spo2=charted[4],
            temp=charted[5], avpu=template.avpu, pain=charted_pain,
            self_reported_urgency=reported, allergies=allergies,
            indicated_drug=template.indicated_drug, needs_icu=template.needs_icu,
            needs_specialist=template.needs_specialist,
        )  # fmt: skip
        if compiled.trusted:
            # Every value is already what Presentation.__post_init__ would make of it
            # (canonical template, floats from _round_vitals but dbp's int floor).
            if charted[3] is not None:
                kw["dbp"] = float(charted[3])
            presentation = presentation_unchecked(**kw)
        else:
            presentation = Presentation(**kw)
        return GeneratedPatient(presentation, state, truth, template)


def charted_state(patient: GeneratedPatient) -> ClinicalState:
    """The clinical state as charted: the true state with every *recorded* vital and
    pain replaced by its charted value (what a reader of the chart can verify)."""
    p = patient.presentation
    updates = {f: getattr(p, f) for f in VITAL_FIELDS if getattr(p, f) is not None}
    if p.pain is not None:
        updates["pain"] = p.pain
    return replace(patient.state, **updates)

"""An ``ed`` episode: the classic :class:`~envs.types.Scenario` (Queue Doctor's seeded
perturbation, or the procedural generator's draw) plus one charted presentation per
patient.

A ``generated`` task (:mod:`envs.generator`) is already the draw of its seed, so it is
played as written (:data:`SCHEDULE_BUILDERS`): no classic perturbation on top; the
episode seed still seeds the presentations.

Presentations come from :class:`~envs.clinical.PatientGenerator`, conditioned on the
patient's true category and seeded by the episode seed (``numpy`` generator; an
unseeded episode uses :data:`UNSEEDED_PRESENTATION_SEED`, so it is deterministic
too). A patient with a deterioration countdown gets a presentation that has an
indicated drug, so the pharmacist can stop it. The schedule's reported severity
replaces the generated self-report (this keeps Queue Doctor's designed misreports),
and the schedule's ICU / specialist flags replace the template's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from envs.classic.scenario import build_scenario
from envs.clinical import PatientGenerator, Presentation
from envs.clinical.library import LIBRARY
from envs.clinical.presentation import AVPU, VITAL_FIELDS, ArrivalMode, Sex, replace_unchecked
from envs.ed.config import DRUG_INDEX, FLOWCHART_CODE, N_DRUGS
from envs.generator import GENERATED_TASK
from envs.types import Scenario, TaskSpec

UNSEEDED_PRESENTATION_SEED = 0
_DRUG_TEMPLATE_IDS = tuple(t.presentation_id for t in LIBRARY if t.indicated_drug is not None)

AVPU_CODE = {a: i for i, a in enumerate(AVPU)}
ARRIVAL_CODE = {m: i for i, m in enumerate(ArrivalMode)}
CHART_FEATURES = (
    "age", "male", "arrival_mode", "injury", "flowchart",
    *VITAL_FIELDS, *(f"{v}_missing" for v in VITAL_FIELDS),
    "avpu", "pain", "pain_missing",
)  # fmt: skip
"""Numeric chart of a presentation, as the nurse's observation shows it (missing
values are 0 with their ``_missing`` flag set; ``flowchart`` 0 = not charted)."""


def chart_vector(p: Presentation) -> list[float]:
    vit = p.vitals
    return [
        p.age,
        float(p.sex is Sex.MALE),
        ARRIVAL_CODE[p.arrival_mode],
        float(p.injury),
        FLOWCHART_CODE[p.flowchart],
        *(0.0 if v is None else v for v in vit),
        *(float(v is None) for v in vit),
        AVPU_CODE[p.avpu],
        0.0 if p.pain is None else p.pain,
        float(p.pain is None),
    ]


@dataclass(frozen=True)
class EdScenario:
    """One ``ed`` episode: the patients (slot = arrival order) and their charts."""

    base: Scenario
    presentations: tuple[Presentation, ...]
    charts: np.ndarray  # (n, len(CHART_FEATURES)) float32, numeric nurse view
    allergies: np.ndarray  # (n, N_DRUGS) bool
    indicated: np.ndarray  # (n,) int64 drug index, -1 = none

    @property
    def task(self) -> TaskSpec:
        return self.base.task

    @property
    def patients(self):
        return self.base.patients

    @property
    def seed(self) -> int | None:
        return self.base.seed


@lru_cache(maxsize=8)
def _generators() -> tuple[PatientGenerator, PatientGenerator]:
    # Built once (template indexing is the slow part); reseeded per episode via .rng.
    mix = (1, 1, 1, 1, 0)  # drug templates exist for categories 1–4 only
    return PatientGenerator(0), PatientGenerator(
        0, presentation_ids=_DRUG_TEMPLATE_IDS, category_mix=mix
    )


def draw_presentations(base: Scenario, rng: np.random.Generator) -> tuple[Presentation, ...]:
    """One presentation per patient of ``base`` (slot order) from ``rng``."""
    any_gen, drug_gen = _generators()
    any_gen.rng = drug_gen.rng = rng
    out = []
    for p in base.patients:
        needs_drug = p.deterioration_countdown > 0 and drug_gen.by_category.get(p.severity)
        g = (drug_gen if needs_drug else any_gen).sample(p.severity)
        reported = p.reported_severity
        # replace() would re-run Presentation's coercion on every field; only the
        # urgency is coerced there (the flags are stored as given).
        make = replace_unchecked if type(reported) is int and 1 <= reported <= 5 else replace
        out.append(
            make(
                g.presentation,
                self_reported_urgency=reported,
                needs_icu=p.requires_icu,
                needs_specialist=p.requires_specialist,
            )
        )
    return tuple(out)


def as_drawn(task: TaskSpec, seed: int | None) -> Scenario:
    return replace(build_scenario(task, None), seed=seed)


SCHEDULE_BUILDERS: dict[str, Callable[[TaskSpec, int | None], Scenario]] = {
    GENERATED_TASK: as_drawn,
}
"""Task name → how its episode's patients are made; any other task: Queue Doctor's
seeded perturbation (:func:`envs.classic.scenario.build_scenario`)."""


def build_ed_scenario(task: TaskSpec, seed: int | None = None) -> EdScenario:
    base = SCHEDULE_BUILDERS.get(task.name, build_scenario)(task, seed)
    rng = np.random.default_rng(UNSEEDED_PRESENTATION_SEED if seed is None else seed)
    pres = draw_presentations(base, rng)
    n = len(pres)
    allergies = np.zeros((n, N_DRUGS), dtype=bool)
    indicated = np.full(n, -1, dtype=np.int64)
    for i, p in enumerate(pres):
        for d in p.allergies:
            allergies[i, DRUG_INDEX[d]] = True
        if p.indicated_drug is not None:
            indicated[i] = DRUG_INDEX[p.indicated_drug]
    charts = np.array([chart_vector(p) for p in pres], dtype=np.float32).reshape(
        n, len(CHART_FEATURES)
    )
    return EdScenario(base, pres, charts, allergies, indicated)

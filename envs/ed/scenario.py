"""An ``ed`` episode: the classic :class:`~envs.types.Scenario` (Queue Doctor's seeded
perturbation, or the procedural generator's draw) plus one charted presentation per
patient.

A ``generated`` task (:mod:`envs.generator`) is already the draw of its seed, so it is
played as written (:data:`SCHEDULE_BUILDERS`): no classic perturbation on top; the
episode seed still seeds the presentations.

Presentations come from :class:`~envs.clinical.PatientGenerator`, conditioned on the
patient's true category and seeded by the episode seed (``numpy`` generator; an
unseeded episode uses :data:`UNSEEDED_PRESENTATION_SEED`, so it is deterministic
too): one fresh draw per patient (``EdConfig.presentations="generator"``, v0 and v1),
or one pick per patient from a :class:`PresentationBank` drawn once per process from
:data:`BANK_SEED` (``"bank"``, v2: one vectorised draw per reset instead of a generator
run per patient). A patient with a deterioration countdown gets a presentation that has an
indicated drug, so the pharmacist can stop it. The schedule's reported severity
replaces the generated self-report (this keeps Queue Doctor's designed misreports),
and the schedule's ICU / specialist flags replace the template's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from envs.classic.scenario import build_scenario
from envs.clinical import PatientGenerator, Presentation
from envs.clinical.library import LIBRARY
from envs.clinical.presentation import AVPU, VITAL_FIELDS, ArrivalMode, Sex, replace_unchecked
from envs.ed.config import DRUG_INDEX, FLOWCHART_CODE, N_DRUGS, EdConfig
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
    presentations: Sequence[Presentation]  # a tuple, or BankedPresentations (v2: lazy)
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


def _tables(pres: tuple[Presentation, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numeric charts, allergy multi-hots and indicated drugs of ``pres``."""
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
    return charts, allergies, indicated


Drawn = tuple[Sequence[Presentation], np.ndarray, np.ndarray, np.ndarray]
"""Presentations, charts, allergies, indicated drugs of one episode's patients."""


def _generated(base: Scenario, rng: np.random.Generator) -> Drawn:
    pres = draw_presentations(base, rng)
    return (pres, *_tables(pres))


BANK_SIZE = 512
"""Presentations the bank holds per (pool, category): 4,608 in all, drawn once per
process (0.5–1.5 s on the 2-core machine of docs/benchmarks)."""
BANK_SEED = 20_261_202


@dataclass(frozen=True)
class PresentationBank:
    """Pre-drawn presentations with their numeric tables; rows ``offsets[pool, c]`` to
    ``+ BANK_SIZE`` are category ``c`` of the pool (``True``: templates with an
    indicated drug, for patients with a countdown; ``False``: any template)."""

    presentations: tuple[Presentation, ...]
    charts: np.ndarray
    allergies: np.ndarray
    indicated: np.ndarray
    offsets: dict[tuple[bool, int], int]


@lru_cache(maxsize=1)
def presentation_bank() -> PresentationBank:
    any_gen, drug_gen = _generators()
    any_gen.rng = drug_gen.rng = np.random.default_rng(BANK_SEED)
    pres: list[Presentation] = []
    offsets: dict[tuple[bool, int], int] = {}
    for pool, gen in ((False, any_gen), (True, drug_gen)):
        for cat, templates in sorted(gen.by_category.items()):
            if templates:
                offsets[pool, int(cat)] = len(pres)
                pres.extend(gen.sample(cat).presentation for _ in range(BANK_SIZE))
    for arr in (charts := _tables(tuple(pres))):
        arr.flags.writeable = False  # shared by every episode
    return PresentationBank(tuple(pres), *charts, offsets)


def _banked_presentation(row: int, patient) -> Presentation:
    reported = patient.reported_severity
    make = replace_unchecked if type(reported) is int and 1 <= reported <= 5 else replace
    return make(
        presentation_bank().presentations[row],
        self_reported_urgency=reported,
        needs_icu=patient.requires_icu,
        needs_specialist=patient.requires_specialist,
    )


class BankedPresentations(Sequence):
    """An episode's banked presentations (bank row + the schedule's self-report and
    flags), each built on first access and kept: training and the batched env read
    only the numeric tables, so most resets never build one."""

    __slots__ = ("_built", "_patients", "_rows")

    def __init__(self, rows: list[int], patients: tuple) -> None:
        self._rows, self._patients = rows, patients
        self._built: list[Presentation | None] = [None] * len(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        p = self._built[i]
        if p is None:
            p = self._built[i] = _banked_presentation(self._rows[i], self._patients[i])
        return p

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"BankedPresentations({len(self)} patients)"


def _banked(base: Scenario, rng: np.random.Generator) -> Drawn:
    """One bank row per patient (its category's pool, the drug pool for a patient
    with a countdown, as :func:`draw_presentations` chooses): one draw of ``rng``."""
    bank = presentation_bank()
    pats = base.patients
    off = bank.offsets
    start = [off.get((p.deterioration_countdown > 0, p.severity)) for p in pats]
    start = [off[False, p.severity] if s is None else s for s, p in zip(start, pats, strict=True)]
    rows = rng.integers(BANK_SIZE, size=len(pats)) + np.array(start, dtype=np.int64)
    pres = BankedPresentations(rows.tolist(), tuple(pats))
    return pres, bank.charts[rows], bank.allergies[rows], bank.indicated[rows]


PRESENTATION_DRAWS: dict[str, Callable[[Scenario, np.random.Generator], Drawn]] = {
    "generator": _generated,
    "bank": _banked,
}
"""``EdConfig.presentations`` → how an episode's presentations are drawn."""


def build_ed_scenario(
    task: TaskSpec, seed: int | None = None, config: EdConfig | None = None
) -> EdScenario:
    """The episode of (task, seed); ``config`` picks the presentation source (None:
    the generator, as v0 and v1)."""
    base = SCHEDULE_BUILDERS.get(task.name, build_scenario)(task, seed)
    rng = np.random.default_rng(UNSEEDED_PRESENTATION_SEED if seed is None else seed)
    source = "generator" if config is None else config.presentations
    pres, charts, allergies, indicated = PRESENTATION_DRAWS[source](base, rng)
    return EdScenario(base, pres, charts, allergies, indicated)

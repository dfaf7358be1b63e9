"""Constants and the frozen configuration of the ``ed`` ruleset (docs/spec.md §2.2).

Every reward constant is named once, here (:class:`EdRewards`); every capacity and
the drug stock live in :class:`EdConfig`. The formulary order :data:`DRUGS` is the
pharmacist's action order and the column order of every drug multi-hot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from envs.clinical.presentation import Drug, Flowchart

DRUGS: tuple[Drug, ...] = tuple(Drug)
"""The ED formulary, in pharmacist action order (``slot * len(DRUGS) + drug``)."""
N_DRUGS = len(DRUGS)
DRUG_INDEX: dict[Drug, int] = {d: i for i, d in enumerate(DRUGS)}
FLOWCHARTS: tuple[Flowchart, ...] = tuple(Flowchart)
FLOWCHART_CODE: dict[Flowchart | None, int] = {None: 0} | {
    f: i + 1 for i, f in enumerate(FLOWCHARTS)
}
"""Flowchart → observation code; 0 = not charted."""
N_CATEGORIES = 5

HIGH_ALERT_DRUGS = frozenset({Drug.ADRENALINE, Drug.INSULIN, Drug.MIDAZOLAM, Drug.MORPHINE})
"""ISMP high-alert classes (adrenergic agonists, insulin, IV sedation, opioids): given
without an indication they harm the patient, so in ``ed`` they cause an adverse event."""

PRESENTATION_SOURCES = ("generator", "bank")
"""How an episode's presentations are drawn (:data:`envs.ed.scenario.PRESENTATION_DRAWS`):
``generator``, one fresh draw per patient from the clinical generator (v0, v1);
``bank``, one pick per patient from a bank drawn once per process (v2)."""

DEFAULT_STOCK = 3
"""Doses of every drug on the shelf at the start of an episode (it can run out)."""


class Role(IntEnum):
    """The three agents, in the order their actions apply within a sub-step."""

    NURSE = 0
    PHARMACIST = 1
    CONSULTANT = 2

    @property
    def agent(self) -> str:
        return AGENT_NAMES[self]


AGENT_NAMES = {
    Role.NURSE: "triage_nurse",
    Role.PHARMACIST: "pharmacist",
    Role.CONSULTANT: "consultant",
}
AGENTS: tuple[str, ...] = tuple(AGENT_NAMES[r] for r in Role)
ROLE_OF: dict[str, Role] = {name: r for r, name in AGENT_NAMES.items()}


class Place(IntEnum):
    """Where a patient is. Every patient is in exactly one place at every moment."""

    PENDING = 0  # not arrived yet
    WAITING = 1
    SERVED = 2
    LEFT = 3  # still waiting when the episode ended
    LWBS = 4  # v1: left without being seen (wait passed the patience of its category)
    DIED = 5  # v1: a category-1 patient left untreated past ``death_wait``


# Reward term names (keys of ``infos[agent]["reward_terms"]``).
SERVE = "serve"
WAITING_IMMEDIATE = "waiting_immediate"
UNDER_TRIAGE = "under_triage"
IDLE_TRIAGE = "idle_triage"
ADVERSE_EVENT = "adverse_event"
PREVENTED_DETERIORATION = "prevented_deterioration"
IDLE_DOCTORS = "idle_doctors"
ILLEGAL_ACTION = "illegal_action"
LWBS = "lwbs"
DEATH = "death"
SHARED_TERMS = (SERVE, WAITING_IMMEDIATE)
V1_SHARED_TERMS = (*SHARED_TERMS, LWBS, DEATH)
ROLE_TERMS: dict[Role, tuple[str, ...]] = {
    Role.NURSE: (UNDER_TRIAGE, IDLE_TRIAGE, ILLEGAL_ACTION),
    Role.PHARMACIST: (ADVERSE_EVENT, PREVENTED_DETERIORATION, ILLEGAL_ACTION),
    Role.CONSULTANT: (IDLE_DOCTORS, ILLEGAL_ACTION),
}


@dataclass(frozen=True, slots=True)
class EdRewards:
    """Per-event reward constants (docs/spec.md §2.2). Signs are part of the value."""

    waiting_immediate: float = -0.03  # per true category-1 patient left waiting, per step
    under_triage: float = -0.3  # a true 1–2 triaged ≥ 2 levels too low
    idle_triage: float = -0.02  # per unused triage slot while untriaged patients wait
    adverse_event: float = -0.5  # allergy or unindicated high-alert drug
    prevented_deterioration: float = 0.2  # the indicated drug stopped a countdown
    idle_doctor: float = -0.02  # per unused doctor slot while someone was servable
    illegal_action: float = -0.01  # masked-out action: a counted no-op
    lwbs: float = -0.1  # v1: a patient left without being seen
    death: float = -1.0  # v1: a patient died waiting


@dataclass(frozen=True, slots=True)
class EdConfig:
    """Capacities, stock and reward constants of one ``ed`` env.

    ``stock`` is one count per drug of :data:`DRUGS` (use :meth:`with_stock` to set a
    few by name). ``retriage``: the nurse may re-triage a waiting patient whose visible
    condition changed since triage.

    The v1 mechanisms (all off by default, so ``EdConfig()`` is v0; :data:`V1` turns
    them on; the rationale and sources are in :mod:`envs.ed.v1`):

    * ``treatment_steps``: doctor time steps a serve occupies, per *true* category 1–5
      at the serve (``None``: 1 step for everyone, v0);
    * ``lwbs_patience``: per true category 1–5, the wait at which a waiting patient
      leaves without being seen (0: never);
    * ``death_wait``: steps a true category-1 patient survives waiting (0: never dies);
    * ``consultant_sees_self_report``: False hides an untriaged patient's self-report
      from the consultant (its visible category is then 0 = unknown until triage);
    * ``serve_requires_triage``: only triaged patients are servable, and while the
      nurse can still triage, END by the pharmacist or consultant is a *pass* (they
      wait for her triage instead of ending their turn);
    * ``critical_clock``: a patient who becomes category 1 while waiting is valued on
      the category-1 cliff from that moment (capped by the arrival category's value),
      so rescuing a deteriorated patient pays and the death clock matches the cliff.
    * ``presentations``: where the episode's presentations come from
      (:data:`PRESENTATION_SOURCES`; not a rule: the dynamics read only the charts).
    """

    triage_capacity: int = 2
    dispense_capacity: int = 1
    stock: tuple[int, ...] = (DEFAULT_STOCK,) * N_DRUGS
    rewards: EdRewards = field(default_factory=EdRewards)
    retriage: bool = True
    treatment_steps: tuple[int, ...] | None = None
    lwbs_patience: tuple[int, ...] | None = None
    death_wait: int = 0
    consultant_sees_self_report: bool = True
    serve_requires_triage: bool = False
    critical_clock: bool = False
    presentations: str = "generator"

    def __post_init__(self) -> None:
        if self.triage_capacity < 1 or self.dispense_capacity < 1:
            raise ValueError("triage_capacity and dispense_capacity must be >= 1")
        for name in ("treatment_steps", "lwbs_patience"):
            v = getattr(self, name)
            low = 1 if name == "treatment_steps" else 0
            if v is not None and (len(v) != N_CATEGORIES or any(int(x) < low for x in v)):
                raise ValueError(f"{name} needs {N_CATEGORIES} integers >= {low}, one per category")
        if self.death_wait < 0:
            raise ValueError("death_wait must be >= 0 (0 = patients never die)")
        if self.presentations not in PRESENTATION_SOURCES:
            raise ValueError(
                f"presentations must be one of {', '.join(PRESENTATION_SOURCES)}, "
                f"got {self.presentations!r}"
            )

    @property
    def is_v1(self) -> bool:
        """True when any v1 mechanism is on (the env then reports the v1 terms)."""
        return bool(
            self.treatment_steps or self.lwbs_patience or self.death_wait
            or not self.consultant_sees_self_report or self.serve_requires_triage
            or self.critical_clock
        )  # fmt: skip

    def duration(self, category: int) -> int:
        """Doctor steps a serve of true ``category`` occupies."""
        return 1 if self.treatment_steps is None else int(self.treatment_steps[category - 1])

    def patience(self, category: int) -> int:
        """Wait at which a waiting patient of true ``category`` leaves (0: never)."""
        return 0 if self.lwbs_patience is None else int(self.lwbs_patience[category - 1])
        if len(self.stock) != N_DRUGS or any(s < 0 for s in self.stock):
            raise ValueError(f"stock needs {N_DRUGS} non-negative counts (one per drug)")

    @classmethod
    def with_stock(cls, stock: Mapping[Drug | str, int], default: int = DEFAULT_STOCK, **kw):
        counts = [default] * N_DRUGS
        for drug, n in stock.items():
            counts[DRUG_INDEX[Drug(drug)]] = int(n)
        return cls(stock=tuple(counts), **kw)

    def capacity(self, role: Role, doctors: int) -> int:
        """Actions of ``role`` per time step (the consultant's are doctor slots)."""
        return (self.triage_capacity, self.dispense_capacity, doctors)[role]

    def reward_bounds(self, n_slots: int, doctors: int) -> tuple[float, float]:
        """Bounds of the team reward of one parallel step (one sub-step, possibly
        followed by a time advance): at most one serve (≤ 1), one prevention, one
        triage, one dose and one illegal action per agent; the time advance adds the
        idle and waiting terms."""
        r = self.rewards
        departures = (r.lwbs + r.death) * n_slots if self.is_v1 else 0.0
        low = (
            departures
            + r.waiting_immediate * n_slots
            + r.under_triage
            + r.adverse_event
            + r.idle_doctor * doctors
            + r.idle_triage * self.triage_capacity
            + r.illegal_action * len(Role)
        )
        return low, 1.0 + r.prevented_deterioration


V1 = EdConfig(
    treatment_steps=(2, 2, 2, 2, 2),
    lwbs_patience=(0, 0, 8, 5, 4),
    death_wait=3,
    consultant_sees_self_report=False,
    serve_requires_triage=True,
)
"""The v1 defaults (:mod:`envs.ed.v1`): the mechanisms on, v0's capacities.
``critical_clock`` stays off: with it a deterioration costs almost no serve reward
(the arrival cap already equals the new value), so the pharmacist stopped mattering
(a random pharmacist cost 1.9 % of the bound on sepsis_wave with it, 6.7 % without;
20-50 seeds, experiments/role_ablation.py)."""

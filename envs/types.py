"""Core types shared by every layer: severities, conditions, patient and task specs.

Scenario data are frozen dataclasses; the only mutable object in the engine is the
per-episode state owned by a ruleset (see :mod:`envs.classic.dynamics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum


class Severity(IntEnum):
    """Manchester Triage System category (1 = most urgent). Target times in minutes."""

    IMMEDIATE = 1
    VERY_URGENT = 2
    URGENT = 3
    LESS_URGENT = 4
    NON_URGENT = 5

    @property
    def colour(self) -> str:
        return _COLOURS[self]

    @property
    def target_minutes(self) -> int:
        return _TARGET_MINUTES[self]


_COLOURS = {
    Severity.IMMEDIATE: "RED",
    Severity.VERY_URGENT: "ORANGE",
    Severity.URGENT: "YELLOW",
    Severity.LESS_URGENT: "GREEN",
    Severity.NON_URGENT: "BLUE",
}
_TARGET_MINUTES = {
    Severity.IMMEDIATE: 0,
    Severity.VERY_URGENT: 10,
    Severity.URGENT: 60,
    Severity.LESS_URGENT: 120,
    Severity.NON_URGENT: 240,
}

MINUTES_PER_STEP = 10
"""One engine step is 10 minutes of ED time (Queue Doctor's convention)."""


class Condition(IntEnum):
    """Visible condition of a waiting patient (changes only on deterioration)."""

    STABLE = 0
    AT_RISK = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Grader(str, Enum):
    """Which of Queue Doctor's three grading formulas a task uses."""

    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


NO_COUNTDOWN = -1
"""Deterioration countdown sentinel: the patient never deteriorates (or already did)."""


@dataclass(frozen=True, slots=True)
class PatientSpec:
    """One scheduled arrival, as written in a task schedule (before any perturbation)."""

    patient_id: str
    step: int
    severity: int
    reported_severity: int
    deterioration_countdown: int = NO_COUNTDOWN
    requires_icu: bool = False
    requires_specialist: bool = False


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A fixed task: resources, horizon, grader and arrival schedule."""

    name: str
    alias: str
    title: str
    difficulty: str
    max_steps: int
    num_doctors: int
    icu_beds: int
    grader: Grader
    description: str
    arrivals: tuple[PatientSpec, ...]
    # Queue Doctor's (stale) normalising constant for Σ serve reward; kept for `classic`.
    optimal_reward: float
    # Grader denominators, fixed by the schedule as written (not by a perturbed episode).
    critical_total: int = field(init=False)
    resource_total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "critical_total", sum(1 for a in self.arrivals if a.severity <= 2))
        object.__setattr__(
            self,
            "resource_total",
            sum(1 for a in self.arrivals if a.requires_icu or a.requires_specialist),
        )

    @property
    def num_patients(self) -> int:
        return len(self.arrivals)


@dataclass(frozen=True, slots=True)
class EpisodePatient:
    """A patient of one concrete episode (after the seeded perturbation).

    ``slot`` is the patient's index in arrival order (arrival step, then schedule
    order), which is also the order Queue Doctor keeps its queue in.
    """

    slot: int
    patient_id: str
    arrival_step: int
    severity: int
    reported_severity: int
    deterioration_countdown: int
    requires_icu: bool
    requires_specialist: bool

    @property
    def doctors_needed(self) -> int:
        return 2 if self.requires_specialist else 1


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything that fixes one episode: the task and its concrete patients."""

    task: TaskSpec
    seed: int | None
    patients: tuple[EpisodePatient, ...]

    @property
    def max_steps(self) -> int:
        return self.task.max_steps

"""The ``generated`` task (docs/spec.md §1): whole ED scenarios from a seeded procedural generator.

:func:`generate_task` turns ``(seed, GeneratorParams)`` into a :class:`~envs.types.TaskSpec`
with every draw taken from ``numpy.random.default_rng(seed)`` (never a global RNG), in
this fixed order, so equal seeds give equal tasks in every process:

1. per step ``t < horizon``: ``Poisson(arrival_rate)`` routine arrivals;
2. per step: a surge with probability ``surge_prob``, of ``surge_size`` (inclusive
   range) extra patients;
3. per patient (arrival order; routine before surge within a step): the true
   category from ``category_mix`` (routine) or ``surge_category_mix`` (surge);
   a misreport (probability ``misreport_prob``: the self-report is one of the
   other four categories, uniformly); a deterioration countdown (probability
   ``deterioration_prob``, categories ≥ 2 only, uniform in ``deterioration_countdown``);
   an ICU need (``icu_rate``) or else a specialist need (``specialist_rate``), both
   for categories ≤ 2 only.

Invariants the engines assume (checked by the tests): ids ``P001`` … in arrival
order; ``0 ≤ step < horizon``; categories and self-reports in 1–5; countdown −1 or
≥ 1; ICU patients only when ``icu_beds > 0``, specialist patients (2 doctors) only
when ``doctors ≥ 2``, never both; at least one patient (an empty draw gets one
routine step-0 patient, drawn after everything else) and at most ``max_patients``
(later arrivals are dropped): the PettingZoo env pads every episode to
``max_patients`` slots so its spaces are fixed.

The task is graded with the *hard* formula (survival, time, fairness, resources,
missed-emergency penalty); ``optimal_reward`` is :data:`GENERATED_OPTIMAL_REWARD_PLACEHOLDER`
because the ``ed`` graders normalise by the episode's clairvoyant bound instead.
``ed`` plays the schedule as drawn: no classic perturbation on top
(:func:`envs.ed.scenario.build_ed_scenario`). The classic ruleset and the tool API do
not accept ``generated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from envs.tasks import get_task
from envs.types import NO_COUNTDOWN, Grader, PatientSpec, TaskSpec

GENERATED_TASK = "generated"
"""Task name of the procedural generator (also its alias)."""
GENERATED_OPTIMAL_REWARD_PLACEHOLDER = 1.0
"""``TaskSpec.optimal_reward`` of a generated task: unused by ``ed`` (which normalises by
the episode's clairvoyant bound); only a positive placeholder."""
N_CATEGORIES = 5
CRITICAL_MAX_CATEGORY = 2
"""ICU / specialist needs are drawn only for categories 1–2."""
DETERIORATES_MIN_CATEGORY = 2
"""A category-1 patient cannot deteriorate further."""
SPECIALIST_DOCTORS = 2
ID_FORMAT = "P{:03d}"


@dataclass(frozen=True)
class GeneratorParams:
    """Knobs of the procedural ED generator (defaults: a busy 3-doctor department)."""

    horizon: int = 30
    doctors: int = 3
    icu_beds: int = 1
    arrival_rate: float = 0.8  # mean routine arrivals per step
    surge_prob: float = 0.04
    surge_size: tuple[int, int] = (3, 6)  # inclusive
    category_mix: tuple[float, ...] = (0.05, 0.20, 0.35, 0.30, 0.10)
    surge_category_mix: tuple[float, ...] = (0.30, 0.40, 0.20, 0.10, 0.0)
    misreport_prob: float = 0.10
    deterioration_prob: float = 0.15
    deterioration_countdown: tuple[int, int] = (2, 4)  # inclusive, steps
    icu_rate: float = 0.15
    specialist_rate: float = 0.15
    max_patients: int = 40
    difficulty: str = field(default="hard")
    name: str = GENERATED_TASK
    """Task name of the draws (a suite scenario's name; see :mod:`envs.ed.suite`)."""

    def __post_init__(self) -> None:
        checks = {
            "horizon >= 1": self.horizon >= 1,
            "doctors >= 1": self.doctors >= 1,
            "icu_beds >= 0": self.icu_beds >= 0,
            "arrival_rate >= 0": self.arrival_rate >= 0,
            "max_patients >= 1": self.max_patients >= 1,
            "1 <= surge_size[0] <= surge_size[1]": 1 <= self.surge_size[0] <= self.surge_size[1],
            "1 <= countdown[0] <= countdown[1]": (
                1 <= self.deterioration_countdown[0] <= self.deterioration_countdown[1]
            ),
        }
        for name in ("surge_prob", "misreport_prob", "deterioration_prob", "icu_rate",
                     "specialist_rate"):  # fmt: skip
            checks[f"0 <= {name} <= 1"] = 0.0 <= getattr(self, name) <= 1.0
        for name in ("category_mix", "surge_category_mix"):
            mix = np.asarray(getattr(self, name), dtype=float)
            checks[f"{name}: 5 non-negative weights, positive sum"] = (
                mix.shape == (N_CATEGORIES,) and bool((mix >= 0).all()) and mix.sum() > 0
            )
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid GeneratorParams: {', '.join(bad)}")


@lru_cache(maxsize=64)
def _patient_ids(n: int) -> tuple[str, ...]:
    return tuple(ID_FORMAT.format(i + 1) for i in range(n))


def _probs(mix: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(mix, dtype=float)
    return p / p.sum()


def generate_task(seed: int, params: GeneratorParams = GeneratorParams()) -> TaskSpec:  # noqa: B008
    """The generated task of ``seed`` (see the module docstring for the draw order)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    h = params.horizon
    routine = rng.poisson(params.arrival_rate, h)
    surge = np.where(
        rng.random(h) < params.surge_prob,
        rng.integers(params.surge_size[0], params.surge_size[1] + 1, h),
        0,
    )
    steps = np.repeat(np.arange(h), routine + surge)
    # Within a step: routine arrivals first, then the surge.
    is_surge = np.repeat(np.tile([False, True], h), np.column_stack([routine, surge]).ravel())
    n = len(steps)
    sev = (
        np.where(
            is_surge,
            rng.choice(N_CATEGORIES, n, p=_probs(params.surge_category_mix)),
            rng.choice(N_CATEGORIES, n, p=_probs(params.category_mix)),
        )
        + 1
    )
    other = rng.integers(1, N_CATEGORIES, n)  # one of the 4 other categories
    reported = np.where(rng.random(n) < params.misreport_prob, other + (other >= sev), sev)
    det = (rng.random(n) < params.deterioration_prob) & (sev >= DETERIORATES_MIN_CATEGORY)
    lo, hi = params.deterioration_countdown
    countdown = np.where(det, rng.integers(lo, hi + 1, n), NO_COUNTDOWN)
    critical = sev <= CRITICAL_MAX_CATEGORY
    icu = critical & (rng.random(n) < params.icu_rate) & (params.icu_beds > 0)
    spec = (
        critical
        & ~icu
        & (rng.random(n) < params.specialist_rate)
        & (params.doctors >= SPECIALIST_DOCTORS)
    )
    if n == 0:  # never an empty department: one routine patient at step 0
        steps = np.zeros(1, dtype=np.int64)
        sev = rng.choice(N_CATEGORIES, 1, p=_probs(params.category_mix)) + 1
        reported, countdown = sev, np.full(1, NO_COUNTDOWN)
        icu = spec = np.zeros(1, dtype=bool)
    keep = min(len(steps), params.max_patients)
    # Whole columns to Python values at once (same ints and bools as int()/bool() each).
    arrivals = tuple(
        map(
            PatientSpec,
            _patient_ids(keep),
            steps[:keep].tolist(),
            sev[:keep].tolist(),
            reported[:keep].tolist(),
            countdown[:keep].tolist(),
            icu[:keep].tolist(),
            spec[:keep].tolist(),
        )
    )
    return TaskSpec(
        name=params.name,
        alias=params.name,
        title=f"Generated ED (seed {int(seed)})",
        difficulty=params.difficulty,
        max_steps=h,
        num_doctors=params.doctors,
        icu_beds=params.icu_beds,
        grader=Grader.HARD,
        description=(
            f"Procedurally generated: {keep} patients over {h} steps, {params.doctors} "
            f"doctors, {params.icu_beds} ICU beds (envs.generator, seed {int(seed)})."
        ),
        arrivals=arrivals,
        optimal_reward=GENERATED_OPTIMAL_REWARD_PLACEHOLDER,
    )


@dataclass(frozen=True)
class FixedTaskSource:
    """One of the fixed tasks: the same schedule every episode."""

    template: TaskSpec

    @property
    def n_slots(self) -> int:
        return self.template.num_patients

    def task_for(self, seed: int | None) -> TaskSpec:
        return self.template


UNSEEDED_GENERATOR_SEED = 0
"""Generator seed of an episode without an episode seed (an unseeded env)."""


@dataclass(frozen=True)
class GeneratedTaskSource:
    """The ``generated`` task: a fresh schedule per episode seed, ``max_patients`` slots."""

    params: GeneratorParams = GeneratorParams()

    @property
    def template(self) -> TaskSpec:
        return generate_task(UNSEEDED_GENERATOR_SEED, self.params)

    @property
    def n_slots(self) -> int:
        return self.params.max_patients

    def task_for(self, seed: int | None) -> TaskSpec:
        return generate_task(UNSEEDED_GENERATOR_SEED if seed is None else seed, self.params)


TaskSource = FixedTaskSource | GeneratedTaskSource


def task_source(name: str, params: GeneratorParams | None = None) -> TaskSource:
    """Where an env's per-episode task comes from: ``"generated"`` or a fixed task name
    / alias (``params`` only for ``generated``)."""
    if name == GENERATED_TASK:
        return GeneratedTaskSource(params or GeneratorParams())
    if params is not None:
        raise ValueError(f"generator_params only apply to task {GENERATED_TASK!r}, not {name!r}")
    return FixedTaskSource(get_task(name))


__all__ = [
    "GENERATED_TASK",
    "FixedTaskSource",
    "GeneratedTaskSource",
    "GeneratorParams",
    "generate_task",
    "task_source",
]

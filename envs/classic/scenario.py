"""Turn a task spec (+ optional seed) into a concrete episode :class:`Scenario`.

The ``classic`` perturbation is Queue Doctor's, bit for bit: one
``random.Random(seed)`` consumed per scheduled arrival in schedule order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from envs.types import EpisodePatient, Scenario, TaskSpec

ARRIVAL_JITTER_PROB = 0.10
"""Chance that a seeded arrival moves one step earlier or later."""
SEVERITY_JITTER_PROB = 0.15
"""Chance that a seeded arrival's severity moves one level up or down."""
_OFFSETS = [-1, 1]
MIN_SEVERITY, MAX_SEVERITY = 1, 5


def _clamp_severity(s: int) -> int:
    return max(MIN_SEVERITY, min(MAX_SEVERITY, s))


def perturb_schedule(
    task: TaskSpec, seed: int | None, rng: random.Random | None = None
) -> list[tuple[int, int, int]]:
    """(arrival step, true severity, reported severity) per scheduled arrival, in
    schedule order: Queue Doctor's draws from ``random.Random(seed)``, none for None.
    ``rng``: a ``random.Random`` to re-seed with ``seed`` and draw from instead of a new
    one (the same draws: ``Random(seed)`` is ``Random()`` then ``.seed(seed)``)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    if seed is None:
        return [(a.step, a.severity, a.reported_severity) for a in task.arrivals]
    if rng is None:
        rng = random.Random(seed)
    else:
        rng.seed(seed)
    rand, choice = rng.random, rng.choice  # bound once: this loop is on the reset path
    out = []
    for a in task.arrivals:
        step = a.step + choice(_OFFSETS) if rand() < ARRIVAL_JITTER_PROB else a.step
        sev, reported = a.severity, a.reported_severity
        if rand() < SEVERITY_JITTER_PROB:
            offset = choice(_OFFSETS)
            # Queue Doctor never makes an immediate patient less urgent.
            if not (sev == MIN_SEVERITY and offset == 1):
                # A misreport stays as written; an honest report follows the truth.
                if reported == sev:
                    reported = _clamp_severity(reported + offset)
                sev = _clamp_severity(sev + offset)
        out.append((step if step > 0 else 0, sev, reported))
    return out


PATIENT_CACHE_SIZE = 65_536
"""Episode patients kept by :func:`build_scenario` (they are immutable and a seeded
arrival takes one of a handful of forms, so most resets build none; past this size the
cache starts over)."""
_PATIENTS: dict[tuple, EpisodePatient] = {}


def build_scenario(task: TaskSpec, seed: int | None = None) -> Scenario:
    """Apply the seeded perturbation (none when ``seed`` is None) and order by arrival."""
    return scenario_from_draws(task, seed, perturb_schedule(task, seed))


def scenario_from_draws(
    task: TaskSpec, seed: int | None, draws: Sequence[tuple[int, int, int]]
) -> Scenario:
    """The scenario of ``perturb_schedule(task, seed)``'s ``draws``, ordered by arrival."""
    drawn = [(d, i, a) for i, (d, a) in enumerate(zip(draws, task.arrivals, strict=True))]
    # Queue Doctor appends arrivals per step in schedule order: queue order is
    # (arrival step, schedule index), which is also our slot order.
    drawn.sort(key=lambda d: (d[0][0], d[1]))
    cache = _PATIENTS
    if len(cache) > PATIENT_CACHE_SIZE:
        cache.clear()
    patients = []
    for slot, ((arrival, true_sev, reported), _, a) in enumerate(drawn):
        key = (slot, a.patient_id, arrival, true_sev, reported, a.deterioration_countdown,
               a.requires_icu, a.requires_specialist)  # fmt: skip
        p = cache.get(key)
        if p is None:
            p = cache[key] = EpisodePatient(*key)
        patients.append(p)
    return Scenario(task=task, seed=seed, patients=tuple(patients))

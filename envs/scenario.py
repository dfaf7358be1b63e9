"""Turn a task spec (+ optional seed) into a concrete episode :class:`Scenario`.

The ``classic`` perturbation is Queue Doctor's, bit for bit: one
``random.Random(seed)`` consumed per scheduled arrival in schedule order.
"""

from __future__ import annotations

import random

from envs.types import EpisodePatient, PatientSpec, Scenario, TaskSpec

ARRIVAL_JITTER_PROB = 0.10
"""Chance that a seeded arrival moves one step earlier or later."""
SEVERITY_JITTER_PROB = 0.15
"""Chance that a seeded arrival's severity moves one level up or down."""
_OFFSETS = [-1, 1]
MIN_SEVERITY, MAX_SEVERITY = 1, 5


def _clamp_severity(s: int) -> int:
    return max(MIN_SEVERITY, min(MAX_SEVERITY, s))


def _perturb(a: PatientSpec, rng: random.Random | None) -> tuple[int, int, int]:
    """Return (arrival step, true severity, reported severity) for one arrival."""
    step_offset = sev_offset = 0
    if rng is not None:
        if rng.random() < ARRIVAL_JITTER_PROB:
            step_offset = rng.choice(_OFFSETS)
        if rng.random() < SEVERITY_JITTER_PROB:
            sev_offset = rng.choice(_OFFSETS)
            # Queue Doctor never makes an immediate patient less urgent.
            if a.severity == MIN_SEVERITY and sev_offset == 1:
                sev_offset = 0
    arrival = max(0, a.step + step_offset)
    true_sev = _clamp_severity(a.severity + sev_offset)
    reported = a.reported_severity
    # A misreport stays as written; an honest report follows the perturbed truth.
    if reported == a.severity and sev_offset != 0:
        reported = _clamp_severity(reported + sev_offset)
    return arrival, true_sev, reported


def build_scenario(task: TaskSpec, seed: int | None = None) -> Scenario:
    """Apply the seeded perturbation (none when ``seed`` is None) and order by arrival."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    rng = random.Random(seed) if seed is not None else None
    drawn = [(_perturb(a, rng), i, a) for i, a in enumerate(task.arrivals)]
    # Queue Doctor appends arrivals per step in schedule order: queue order is
    # (arrival step, schedule index), which is also our slot order.
    drawn.sort(key=lambda d: (d[0][0], d[1]))
    patients = tuple(
        EpisodePatient(
            slot=slot,
            patient_id=a.patient_id,
            arrival_step=arrival,
            severity=true_sev,
            reported_severity=reported,
            deterioration_countdown=a.deterioration_countdown,
            requires_icu=a.requires_icu,
            requires_specialist=a.requires_specialist,
        )
        for slot, ((arrival, true_sev, reported), _, a) in enumerate(drawn)
    )
    return Scenario(task=task, seed=seed, patients=patients)

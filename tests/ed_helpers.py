"""Small hand-made ``ed`` scenarios for exact reward checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from envs.ed.config import N_CATEGORIES, N_DRUGS, EdConfig, Role
from envs.ed.engine import EdState, end_action, initial_state
from envs.ed.scenario import EdScenario, build_ed_scenario
from envs.types import Grader, PatientSpec, TaskSpec


def tiny_task(*patients: PatientSpec, steps: int = 4, doctors: int = 1, icu: int = 0) -> TaskSpec:
    return TaskSpec(
        name="tiny", alias="tiny", title="tiny", difficulty="easy", max_steps=steps,
        num_doctors=doctors, icu_beds=icu, grader=Grader.EASY, description="test",
        arrivals=tuple(patients), optimal_reward=1.0,
    )  # fmt: skip


def pat(pid: str, sev: int, step: int = 0, **kw) -> PatientSpec:
    kw.setdefault("reported_severity", sev)
    return PatientSpec(patient_id=pid, step=step, severity=sev, **kw)


def scenario(
    task: TaskSpec,
    indicated: dict[int, int] | None = None,
    allergies: dict[int, list[int]] | None = None,
) -> EdScenario:
    """The task's unseeded scenario with the drug facts overridden per slot."""
    sc = build_ed_scenario(task, None)
    ind = sc.indicated.copy()
    alg = np.zeros_like(sc.allergies)
    for slot, d in (indicated or {}).items():
        ind[slot] = d
    for slot, ds in (allergies or {}).items():
        alg[slot, ds] = True
    return replace(sc, indicated=ind, allergies=alg)


def state(sc: EdScenario, config: EdConfig | None = None) -> EdState:
    return initial_state(sc, config or EdConfig())


def END(role: Role, s: EdState) -> int:
    return end_action(role, s.n_slots)


def triage(slot: int, cat: int) -> int:
    return slot * N_CATEGORIES + cat - 1


def dose(slot: int, drug: int) -> int:
    return slot * N_DRUGS + drug

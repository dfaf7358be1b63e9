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


def slot_scorers(task: str, hints: bool, hint_weight: float | None = None) -> dict:
    """Untrained width-16 slot-scorer modules, one per ``ed`` agent, built for the env
    (the hinted env's spaces with ``hints``); ``hint_weight`` overrides the prior."""
    import torch

    from agents.rllib.hints import HintedEdEnv
    from agents.rllib.training import ed_module_specs
    from envs.ed.config import AGENTS
    from envs.ed_triage_v0 import EdTriageParallelEnv

    env = EdTriageParallelEnv(task, normaliser="static")
    if hints:
        env = HintedEdEnv(env)
    specs = ed_module_specs(task, 16, hints=hints)
    out = {}
    for a in AGENTS:
        spec = specs[a]
        spec.observation_space = env.observation_space(a)
        spec.action_space = env.action_space(a)
        torch.manual_seed(0)
        m = spec.build()
        if hint_weight is not None:
            m.hint_weight.data.fill_(hint_weight)
        out[a] = m
    return out

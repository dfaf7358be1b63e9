"""The ``ed`` oracle as a team: three policies that play the clairvoyant plan of
:func:`envs.ed.bound.solve` (perfect nurse: true categories; perfect pharmacist:
the indicated drug in time; the consultant serves the ILP schedule).

The three are one clairvoyant player: they share the plan and the nurse's choice of
the current sub-step (the pharmacist may dose the patient she is triaging, since
she acts first), so call them in agent order (nurse, pharmacist, consultant), as
:func:`agents.ed_evaluation.run_episode` does.
"""

from __future__ import annotations

import numpy as np

from agents.base import Observation, Policy, PolicyContext
from envs.ed import codec
from envs.ed.bound import EdPlan, solve
from envs.ed.codec import COLUMNS
from envs.ed.config import AGENTS, DRUGS, Role
from envs.ed.scenario import build_ed_scenario


def _read(role: Role, obs: Observation) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(mask, END action, patient rows, time step) of ``role``'s observation."""
    mask = obs["action_mask"]
    n = codec.slots_of(role, len(mask))
    rows, ctx = codec.split(role, obs["observation"], n)
    return mask, len(mask) - 1, rows, int(ctx[codec.CONTEXT_COLUMNS[role]["step"]])


class EdOracleTeam:
    """Builds the three oracle policies for one env (``context`` from the env)."""

    def __init__(self, context: PolicyContext, config=None) -> None:
        self.context = context
        # The plan must be the bound of the env being played (v1's rules included).
        self.config = config if config is not None else getattr(context, "config", None)
        self.plan: EdPlan | None = None
        self.severity: list[int] = []
        self.nurse_choice: int | None = None
        self._members = {
            Role.NURSE: _OracleNurse(self),
            Role.PHARMACIST: _OraclePharmacist(self),
            Role.CONSULTANT: _OracleConsultant(self),
        }

    def solve(self, seed: int | None) -> None:
        # The episode's own task: for ``generated`` and the suite scenarios each seed
        # draws a new one, and ``context.task`` is only the template (seed 0's draw).
        ctx = self.context
        task = ctx.task if ctx.task_for is None else ctx.task_for(seed)
        self.plan = solve(task, seed, self.config).plan
        self.severity = [p.severity for p in build_ed_scenario(task, seed).patients]

    def policies(self) -> dict[str, Policy]:
        return {r.agent: self._members[r] for r in Role}


class _Member(Policy):
    role: Role

    def __init__(self, team: EdOracleTeam) -> None:
        super().__init__(team.context)
        self.team = team

    def reset(self, seed: int | None = None) -> None:
        if self.role is Role.NURSE:  # the team solves once per episode
            self.team.solve(seed)


class _OracleNurse(_Member):
    name = "ed_oracle_nurse"
    role = Role.NURSE

    def act(self, observation: Observation) -> int:
        mask, end, rows, t = _read(Role.NURSE, observation)
        n = len(rows)
        plan = self.team.plan
        assert plan is not None, "reset(seed) first"
        triaged = rows[:, COLUMNS[Role.NURSE]["triaged"]]
        order = [s for s, _ in plan.dose[t]] + [s for s, _ in plan.triage[t]] + list(range(n))
        choice = end
        for slot in dict.fromkeys(order):
            if slot < len(self.team.severity) and not triaged[slot]:
                a = codec.nurse_action(slot, self.team.severity[slot])
                if mask[a]:
                    choice = a
                    break
        self.team.nurse_choice = choice
        return choice


class _OraclePharmacist(_Member):
    name = "ed_oracle_pharmacist"
    role = Role.PHARMACIST

    def act(self, observation: Observation) -> int:
        mask, end, rows, t = _read(Role.PHARMACIST, observation)
        nurse = self.team.nurse_choice
        being_triaged = None if nurse is None else codec.action_slot(Role.NURSE, nurse)
        for slot, d in self.team.plan.dose[t]:  # type: ignore[union-attr]
            a = codec.pharmacist_action(slot, d)
            given = rows[slot, _given(d)]
            present = rows[slot, _PRESENT] > 0
            if present and not given and (mask[a] or slot == being_triaged):
                return a
        # Nothing to give now: END (a pass while nothing is legal, so later doses survive).
        return end if not mask[:end].any() or not self._pending(rows, t) else _hold(mask)

    def _pending(self, rows: np.ndarray, t: int) -> bool:
        return any(
            rows[s, _PRESENT] > 0 and not rows[s, _given(d)]
            for s, d in self.team.plan.dose[t]  # type: ignore[union-attr]
        )


_PRESENT = COLUMNS[Role.PHARMACIST]["present"]


def _given(d: int) -> int:
    return COLUMNS[Role.PHARMACIST][f"given_{DRUGS[d].value}"]


def _hold(mask: np.ndarray) -> int:
    # Unreachable with the plan's nurse order (the dose target is triaged in the
    # dose's own sub-step); END would forfeit the pending dose, so fail loudly.
    raise RuntimeError("ed oracle: a planned dose is not reachable this sub-step")


class _OracleConsultant(_Member):
    name = "ed_oracle_consultant"
    role = Role.CONSULTANT

    def act(self, observation: Observation) -> int:
        mask, end, _, t = _read(Role.CONSULTANT, observation)
        for slot in self.team.plan.serve[t]:  # type: ignore[union-attr]
            if mask[slot]:
                return slot
        return end


def ed_oracle_member(context: PolicyContext | None = None, role: str = "consultant") -> Policy:
    """One member of a fresh oracle team (use :class:`EdOracleTeam` to get all three)."""
    if context is None:
        raise ValueError("the ed oracle needs a PolicyContext")
    return EdOracleTeam(context).policies()[role]


__all__ = ["AGENTS", "EdOracleTeam", "ed_oracle_member"]

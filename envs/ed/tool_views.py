"""Views, refusal messages and the task catalog of the ``ed`` tools
(:class:`envs.ed.tool_session.EdToolSession`): what each role may see (never the true
severity) and why a decision is refused, read from the env's state and masks; no
engine logic."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.clinical.presentation import format_presentation
from envs.ed import codec
from envs.ed.config import DRUGS, N_DRUGS, Place, Role
from envs.ed.engine import EdState, consultant_slots, role_done
from envs.ed.suite import SCENARIOS
from envs.ed.v1 import ED_ENVS
from envs.types import Condition

ED_RULESET = "ed"

DEPARTURES = {Place.LWBS: "left without being seen", Place.DIED: "died waiting"}
"""v1 departures: place → the event text of ``end_step``."""
ED_WORKFLOW = (
    "Three roles run the ED; one end_step() applies one sub-step of their decisions.\n"
    "1. Call get_queue_state() (or get_queue_state(role=...)) to see each role's view.\n"
    "2. Queue at most one decision per role for this sub-step: "
    "triage_patient(patient_id, category 1-5) [triage nurse], "
    "dispense_drug(patient_id, drug) [pharmacist], serve_patient(patient_id) [consultant].\n"
    "3. Call end_step() to apply them (nurse, then pharmacist, then consultant). "
    "A role that queued nothing ENDs its turn for this 10-minute time step; time advances "
    "once every role is done.\n"
    "4. Repeat until done=true, then call finalize_episode() for the score."
)
V1_WORKFLOW = (
    "\nv1: the consultant sees a patient's urgency only once the nurse has triaged them "
    "(category null before), serves only triaged patients, and a serve keeps its doctor(s) "
    "busy for several time steps (doctors_busy). While the nurse can still triage, a "
    "pharmacist or consultant who queues nothing waits for her instead of ending the turn. "
    "Patients who wait too long leave without being seen (lwbs) and untreated critical "
    "patients die (death); both cost the team reward."
)


def default_version(task_id: str) -> str:
    """The env version a task plays when ``start_task`` gets ``version=None``: v1 for
    the suite scenarios (they exist only there), v0 otherwise (the server's default)."""
    return "v1" if task_id in SCENARIOS else "v0"


def task_versions(task_id: str) -> list[str]:
    """The env versions a task can be played in."""
    return ["v1"] if task_id in SCENARIOS else list(ED_ENVS)


def suite_task_rows() -> list[dict]:
    """``list_tasks`` rows of the suite scenarios (seeded distributions: a draw's patient
    count varies, at most ``max_patients``)."""
    rows = []
    for s in SCENARIOS.values():
        p = s.params
        rows.append(
            {
                "task_id": s.name, "task_name": f"Suite scenario: {s.name}",
                "difficulty": p.difficulty, "max_steps": p.horizon, "num_doctors": p.doctors,
                "icu_beds": p.icu_beds, "total_patients": None, "max_patients": p.max_patients,
                "description": s.challenge, "challenge": s.challenge, "aliases": [],
                "rulesets": [ED_RULESET], "versions": task_versions(s.name),
            }
        )  # fmt: skip
    return rows


def condition_label(code: int) -> str:
    return Condition(int(code)).label


class EdToolViews:
    """Mixin of :class:`~envs.ed.tool_session.EdToolSession`: its views and refusal messages
    (``self`` provides ``_active``, ``_masks``, ``_queued``, ``_dispensable``, ``config``,
    ``version`` and ``cumulative_reward``)."""

    # -- refusal messages (the state decides which reason applies) -----------------------
    def _where(self, s: EdState, slot: int, pid: str) -> str | None:
        place = int(s.place[slot])
        if place == Place.WAITING:
            return None
        return {
            Place.PENDING: f"{pid} has not arrived yet (arrives at step {int(s.arrival[slot])})",
            Place.SERVED: f"{pid} has already been served",
            Place.LEFT: f"{pid} left unserved",
            Place.LWBS: f"{pid} left without being seen",
            Place.DIED: f"{pid} died waiting",
        }[Place(place)]

    def _why_not_triage(self, s: EdState, slot: int, pid: str) -> str:
        why = self._where(s, slot, pid)
        if why is None:
            if s.ended[Role.NURSE] or s.budget[Role.NURSE] <= 0:
                why = "the triage nurse's turn is over for this time step (capacity spent or ended)"
            else:
                why = (
                    f"{pid} is already triaged (category {int(s.triaged[slot])}) and their "
                    "condition has not changed since"
                )
        return f"triage_patient: {why}; call end_step() to move on"

    def _why_not_dispense(self, s: EdState, slot: int, d: int, pid: str) -> str:
        drug = DRUGS[d].value
        why = self._where(s, slot, pid)
        if why is None:
            if s.ended[Role.PHARMACIST] or s.budget[Role.PHARMACIST] <= 0:
                why = "the pharmacist's turn is over for this time step (capacity spent or ended)"
            elif s.triaged[slot] == 0:
                why = f"{pid} is not triaged yet (queue triage_patient({pid!r}, ...) first)"
            elif s.given[slot, d]:
                why = f"{pid} has already had {drug}"
            elif s.stock[d] <= 0:
                why = f"{drug} is out of stock"
            else:  # pragma: no cover - the mask has no other reason
                why = "not allowed now"
        return f"dispense_drug: {why}"

    def _why_not_serve(self, s: EdState, slot: int, pid: str) -> str:
        why = self._where(s, slot, pid)
        if why is None:
            left = s.budget[Role.CONSULTANT]
            if s.ended[Role.CONSULTANT]:
                why = "the consultant's turn is over for this time step"
            elif self.config.serve_requires_triage and s.triaged[slot] == 0:
                why = f"{pid} is not triaged yet (v1: the nurse triages before a doctor sees them)"
            elif s.need[slot] > left:
                why = f"{pid} needs {int(s.need[slot])} doctor slot(s), {left} left this time step"
            elif s.icu[slot] and s.icu_available < 1:
                why = f"{pid} needs the ICU and no ICU bed is free"
            else:  # pragma: no cover
                why = "not allowed now"
        return f"serve_patient: {why}; call end_step() to move on"

    # -- views ---------------------------------------------------------------------------
    def _view(self, agent: str | None) -> dict:
        s = self._active()
        task = s.scenario.task
        m = self._masks()
        waiting = [int(i) for i in s.waiting()]
        roles = {}
        for r in Role:
            roles[r.agent] = {
                "capacity": self.config.capacity(r, task.num_doctors),
                "left": int(s.budget[r]),
                "turn_over": bool(s.done or role_done(s, r, m[r])),
                "queued": self._queued[r][1] if r in self._queued else None,
            }
        out: dict[str, Any] = {
            "step": int(s.step),
            "max_steps": task.max_steps,
            "steps_remaining": task.max_steps - int(s.step),
            "substep": int(s.substep),
            "queue_length": len(waiting),
            "untriaged": sum(1 for i in waiting if s.triaged[i] == 0),
            "patients_served": len(s.served),
            "cumulative_reward": round(self.cumulative_reward, 4),
            "version": self.version,
            "roles": roles,
            "done": bool(s.done),
        }
        if self.config.is_v1:  # departures the whole ED sees (v1)
            out["left_without_being_seen"] = self._departed(s, Place.LWBS)
            out["died"] = self._departed(s, Place.DIED)
        builders = {
            "triage_nurse": self._nurse_view,
            "pharmacist": self._pharmacist_view,
            "consultant": self._consultant_view,
        }
        for name, build in builders.items():
            if agent is None or agent == name:
                out[name] = build(s, waiting)
        return out

    @staticmethod
    def _departed(s: EdState, place: Place) -> list[str]:
        return [s.scenario.patients[i].patient_id for i in np.flatnonzero(s.place == place)]

    def _common(self, s: EdState, i: int) -> dict[str, Any]:
        return {
            "patient_id": s.scenario.patients[i].patient_id,
            "wait": int(s.step - s.arrival[i]),
            "condition": condition_label(s.condition[i]),
        }

    def _nurse_view(self, s: EdState, waiting: list[int]) -> dict:
        m = self._masks()[Role.NURSE]
        free = Role.NURSE not in self._queued and not s.done
        pats = []
        for i in waiting:
            cat = int(s.triaged[i])
            pats.append(
                {
                    **self._common(s, i),
                    "self_reported_urgency": int(s.reported[i]),
                    "triage_category": cat or None,
                    "can_triage": bool(free and m[codec.nurse_action(i, 1)]),
                    "chart": format_presentation(s.scenario.presentations[i]),
                }
            )
        return {"triage_left": int(s.budget[Role.NURSE]), "patients": pats}

    def _pharmacist_view(self, s: EdState, waiting: list[int]) -> dict:
        free = Role.PHARMACIST not in self._queued and not s.done
        mask = self._masks()[Role.PHARMACIST]
        pats = []
        for i in waiting:
            pres = s.scenario.presentations[i]
            cd = int(s.countdown[i])
            can = [DRUGS[d].value for d in np.flatnonzero(self._dispensable(s, i, mask))]
            can = can if free else []
            pats.append(
                {
                    **self._common(s, i),
                    "triage_category": int(s.triaged[i]) or None,
                    "flowchart": None if pres.flowchart is None else pres.flowchart.value,
                    "deterioration_countdown": cd if cd > 0 else None,
                    "allergies": [DRUGS[d].value for d in np.flatnonzero(s.scenario.allergies[i])],
                    "given": [DRUGS[d].value for d in np.flatnonzero(s.given[i])],
                    "can_dispense": can,
                    "chart": format_presentation(pres),
                }
            )
        return {
            "dispense_left": int(s.budget[Role.PHARMACIST]),
            "stock": {d.value: int(n) for d, n in zip(DRUGS, s.stock, strict=True)},
            "patients": pats,
        }

    def _consultant_view(self, s: EdState, waiting: list[int]) -> dict:
        free = Role.CONSULTANT not in self._queued and not s.done
        servable = consultant_slots(s) if free else np.zeros(s.n, dtype=bool)
        task = s.scenario.task
        # v1: before triage the consultant knows nothing of the patient's urgency.
        sees_report = self.config.consultant_sees_self_report
        pats = []
        for i in waiting:
            cd = int(s.countdown[i])
            tri = int(s.triaged[i])
            pats.append(
                {
                    **self._common(s, i),
                    "category": tri or (int(s.reported[i]) if sees_report else None),
                    "triaged": tri > 0,
                    "deterioration_countdown": cd if cd > 0 else None,
                    "requires_icu": bool(s.icu[i]),
                    "requires_specialist": bool(s.need[i] > 1),
                    "doctors_needed": int(s.need[i]),
                    "medicated": bool(s.given[i].any()),
                    "can_serve": bool(servable[i]),
                }
            )
        return {
            "doctors_left": int(s.budget[Role.CONSULTANT]),
            "doctors_total": task.num_doctors,
            # v1: doctors still treating earlier patients in this time step
            "doctors_busy": 0 if s.busy is None or s.done else int(s.busy[s.step]),
            "icu_available": int(s.icu_available),
            "icu_total": task.icu_beds,
            "patients": pats,
        }


def pharmacist_pairs_if_triaged(s: EdState, slot: int) -> np.ndarray:
    """Drugs the pharmacist could give ``slot`` once it is triaged (bool, N_DRUGS)."""
    if s.ended[Role.PHARMACIST] or s.budget[Role.PHARMACIST] <= 0:
        return np.zeros(N_DRUGS, dtype=bool)
    if s.place[slot] != Place.WAITING:
        return np.zeros(N_DRUGS, dtype=bool)
    return (s.stock > 0) & ~s.given[slot]

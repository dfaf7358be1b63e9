"""Queue Doctor's seven MCP tools as a plain Python class (docs/spec.md §3).

Same tool names, arguments and JSON keys as Queue Doctor's ``QueueDoctorEnvironment``;
methods return JSON-ready dicts (an MCP/HTTP server only has to ``json.dumps`` them).
Differences, all deliberate (docs/spec.md §2.1 "observations never expose the true severity"):

* queue entries have no ``true_severity`` and the state has no ``missed_emergencies``
  (it counts hidden severity-1 patients); both are in :meth:`ToolSession.finalize_episode`.
* the "Served …" event does not print the true severity.
* tool misuse (no active task, unknown task or ruleset, bad argument, an action after
  the last step) raises :class:`ToolError` with a message that names the fix, instead of
  returning ``{"error": ...}``; game moves keep Queue Doctor's semantics: an unknown
  patient id costs −0.1 and advances time, a resource-blocked serve returns 0 and does
  not.

Example::

    s = ToolSession()
    s.start_task("mass_casualty", seed=42)
    while not s.get_queue_state()["done"]:
        q = s.get_queue_state()["queue"]
        servable = [p for p in q if p["can_serve_now"]]
        s.serve_patient(servable[0]["patient_id"]) if servable else s.wait()
    print(s.finalize_episode()["score"])
"""

from __future__ import annotations

import uuid
from typing import Any

from envs.classic import dynamics
from envs.classic.scenario import build_scenario
from envs.rulesets import UnknownRulesetError, single_agent_ruleset
from envs.tasks import TASKS, UnknownTaskError, get_task
from envs.types import Severity, TaskSpec
from envs.validation import check_seed

URGENT_COUNTDOWN = 2
"""Countdowns at or below this are flagged URGENT / 'deteriorating soon'."""

WORKFLOW = (
    "1. Call get_queue_state() to observe current patients.\n"
    "2. Call serve_patient(patient_id) to treat a patient "
    "   — this advances time by 1 step.\n"
    "3. OR call wait() to skip a step "
    "   (penalized if patients are waiting).\n"
    "4. Repeat until done=true.\n"
    "5. Call finalize_episode() to get your final score."
)


class ToolError(ValueError):
    """A tool call that cannot be carried out; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict:
        return {"error": self.message, "code": self.code}


def task_names(task: TaskSpec) -> dict:
    """How every tool reply that describes a task names it, on every ruleset."""
    return {"task_id": task.name, "task_name": task.title, "difficulty": task.difficulty}


def task_header(task: TaskSpec, seed: int | None, ruleset: str) -> dict:
    """What ``start_task`` reports about the task, on every ruleset."""
    return {
        **task_names(task),
        "description": task.description,
        "max_steps": task.max_steps,
        "num_doctors": task.num_doctors,
        "icu_beds": task.icu_beds,
        "seed": seed,
        "ruleset": ruleset,
    }


def patient_dict(state: dynamics.ClassicState, slot: int) -> dict:
    """One queue entry as the agent sees it (reported severity only)."""
    p = state.scenario.patients[slot]
    rep = state.reported[slot]
    sev = Severity(rep)
    d: dict[str, Any] = {
        "patient_id": p.patient_id,
        "severity": rep,
        "severity_name": sev.name,
        "triage_color": sev.colour,
        "wait_time": state.wait[slot],
        "condition": state.condition[slot].label,
        "requires_icu": p.requires_icu,
        "requires_specialist": p.requires_specialist,
    }
    cd = state.countdown[slot]
    if cd > 0:
        d["deterioration_countdown"] = cd
        d["deterioration_warning"] = (
            f"URGENT: Patient deteriorates in {cd} step(s)!"
            if cd <= URGENT_COUNTDOWN
            else f"Patient will worsen in {cd} steps if untreated."
        )
    d["can_serve_now"] = dynamics.can_serve(state, slot)
    reason = dynamics.blocked_reason(state, slot)
    if reason is not None:
        d["cannot_serve_reason"] = reason
    return d


def sorted_queue(state: dynamics.ClassicState) -> list[int]:
    """Queue Doctor's display order: reported severity, then longest wait (stable)."""
    return sorted(state.queue, key=lambda s: (state.reported[s], -state.wait[s]))


def triage_advisory(state: dynamics.ClassicState, order: list[int]) -> str:
    if not order:
        return "Queue is empty."
    pats = state.scenario.patients
    parts = []
    emergencies = [s for s in state.queue if state.reported[s] == 1]
    if emergencies:
        parts.append("IMMEDIATE (reported): " + ", ".join(pats[s].patient_id for s in emergencies))
    soon = [s for s in state.queue if 0 < state.countdown[s] <= URGENT_COUNTDOWN]
    if soon:
        parts.append(
            "DETERIORATING SOON: "
            + ", ".join(f"{pats[s].patient_id}(in {state.countdown[s]} steps)" for s in soon)
        )
    if state.scenario.task.icu_beds > 0 and state.icu_available == 0:
        icu_waiting = [s for s in state.queue if pats[s].requires_icu]
        if icu_waiting:
            parts.append(f"ICU FULL: {len(icu_waiting)} patient(s) cannot be admitted.")
    if not parts:
        top = order[0]
        parts.append(
            f"Highest priority: {pats[top].patient_id} "
            f"(reported sev={state.reported[top]}, waited {state.wait[top]} steps)"
        )
    return " | ".join(parts)


def queue_state(state: dynamics.ClassicState) -> dict:
    """Queue Doctor's ``get_state()`` without the hidden truth."""
    task = state.scenario.task
    order = sorted_queue(state)
    d: dict[str, Any] = {
        "step": state.step,
        "max_steps": task.max_steps,
        "steps_remaining": task.max_steps - state.step,
        "queue": [patient_dict(state, s) for s in order],
        "queue_length": len(state.queue),
        "available_doctors": state.doctors_available,
        "patients_served": len(state.served),
        "cumulative_reward": round(state.cumulative_reward, 4),
        "done": state.done,
    }
    if task.icu_beds > 0:
        d["available_icu_beds"] = state.icu_available
        d["total_icu_beds"] = task.icu_beds
    d["triage_advisory"] = triage_advisory(state, order)
    return d


class ToolSession:
    """One agent's session with the seven tools; holds at most one active episode."""

    def __init__(self) -> None:
        self.episode_id = str(uuid.uuid4())
        self.step_count = 0  # tool calls, as Queue Doctor's State.step_count
        self.cumulative_reward = 0.0
        self.finalized_scores: dict[str, float] = {}
        self.task_id: str | None = None
        self.ruleset: str | None = None
        self.state: dynamics.ClassicState | None = None
        self._slot_of: dict[str, int] = {}

    # -- tools ---------------------------------------------------------------------------
    def list_tasks(self) -> list[dict]:
        return [
            {
                "task_id": t.name,
                "task_name": t.title,
                "difficulty": t.difficulty,
                "max_steps": t.max_steps,
                "num_doctors": t.num_doctors,
                "icu_beds": t.icu_beds,
                "total_patients": t.num_patients,
                "description": t.description,
                "aliases": [t.alias],
            }
            for t in TASKS.values()
        ]

    def start_task(self, task_id: str, seed: int | None = None, ruleset: str = "classic") -> dict:
        try:
            task = get_task(task_id)
            rules = single_agent_ruleset(ruleset)
            scenario = build_scenario(task, check_seed(seed))
        except (UnknownTaskError, UnknownRulesetError) as e:
            raise ToolError("bad_argument", str(e)) from None
        except (TypeError, ValueError) as e:
            raise ToolError("bad_argument", f"start_task: {e}") from None
        self.state = rules.initial_state(scenario)
        self.task_id, self.ruleset = task.name, rules.name
        self._slot_of = {p.patient_id: p.slot for p in scenario.patients}
        self.step_count += 1
        initial = queue_state(self.state)
        return {
            **task_header(task, seed, rules.name),
            "initial_queue": initial["queue"],
            "queue_length": initial["queue_length"],
            "triage_advisory": initial["triage_advisory"],
            "workflow": WORKFLOW,
        }

    def get_queue_state(self) -> dict:
        state = self._active()
        self.step_count += 1
        return queue_state(state)

    def serve_patient(self, patient_id: str) -> dict:
        state = self._acting()
        if not isinstance(patient_id, str):
            raise ToolError(
                "bad_argument",
                f"serve_patient: patient_id must be a string such as 'P001', got {patient_id!r}",
            )
        slot = self._slot_of.get(patient_id)
        if slot is not None and slot in state.queue:
            tr = dynamics.serve(state, slot, log=True)
        else:
            tr = dynamics.unknown_patient(state, patient_id, log=True)
        return self._result(f"serve_patient({patient_id})", tr, hint=True)

    def wait(self) -> dict:
        state = self._acting()
        return self._result("wait()", dynamics.wait(state, log=True), hint=False)

    def finalize_episode(self) -> dict:
        state = self._active()
        task = state.scenario.task
        result = single_agent_ruleset(self.ruleset or "classic").grade(state)
        self.finalized_scores[task.name] = result["score"]
        self.step_count += 1
        return {
            **task_names(task),
            **result,
            "episode_steps": state.step,
            "patients_served": len(state.served),
            "served_detail": [s.as_dict() for s in state.served],
            "missed_emergencies": state.missed_emergencies,
            "tasks_completed": len(self.finalized_scores),
            "tasks_total": len(TASKS),
            "all_done": len(self.finalized_scores) >= len(TASKS),
        }

    def get_current_state(self) -> dict:
        return {
            "episode_id": self.episode_id,
            "step_count": self.step_count,
            "active_task": self.task_id,
            "ruleset": self.ruleset,
            "finalized_scores": dict(self.finalized_scores),
            "cumulative_reward": round(self.cumulative_reward, 4),
            "done": len(self.finalized_scores) >= len(TASKS),
            "tasks_available": list(TASKS),
        }

    # -- helpers -------------------------------------------------------------------------
    def _active(self) -> dynamics.ClassicState:
        if self.state is None:
            raise ToolError("no_active_task", "No active task. Call start_task(task_id) first.")
        return self.state

    def _acting(self) -> dynamics.ClassicState:
        state = self._active()
        if state.done:
            raise ToolError(
                "episode_finished",
                f"Episode complete after {state.step} steps. Call finalize_episode(), "
                "or start_task() for a new episode.",
            )
        return state

    def _result(self, action: str, tr: dynamics.Transition, hint: bool) -> dict:
        state = self.state
        assert state is not None
        self.cumulative_reward += tr.reward
        self.step_count += 1
        new_state = queue_state(state)
        out: dict[str, Any] = {
            "action": action,
            "step_reward": round(tr.reward, 4),
            "events": tr.events,
            "state": new_state,
            "done": new_state["done"],
        }
        if hint:
            out["hint"] = (
                "Call finalize_episode() to get your final score."
                if new_state["done"]
                else "Continue serving patients or call finalize_episode() anytime."
            )
        return out


__all__ = ["ToolError", "ToolSession", "queue_state"]

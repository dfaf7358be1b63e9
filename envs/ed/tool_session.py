"""The multi-agent ``ed`` ruleset as tools: a plain Python class over the ``ed``
PettingZoo env (:data:`envs.ed.v1.ED_ENVS`: ``v0`` or ``v1``), the ``ed`` twin of
:class:`envs.classic.tool_session.ToolSession` (the environment server serves both, through
:class:`envs.ruleset_session.MultiRulesetSession`).

Versions: ``start_task(..., version=None)`` plays the suite scenarios of
:mod:`envs.ed.suite` in ``v1`` (the only version they exist in) and the fixed tasks and
``generated`` in ``v0``; ``version="v1"`` plays a fixed task or ``generated`` with the v1
mechanisms (each task's own v1 config). Under v1 the consultant sees no self-report
before triage (``category`` null), doctors stay busy with ongoing treatments
(``doctors_busy``), and patients leave without being seen or die waiting (``events``,
the view's ``left_without_being_seen``/``died``, the ``lwbs``/``death`` reward terms).

Three roles play one emergency department: the triage nurse (``triage_patient``), the
pharmacist (``dispense_drug``) and the consultant (``serve_patient``). Patients are named
by id (``"P003"``), never by slot; the class only translates ids and names into the
env's discrete actions and checks them against the env's action masks.

Semantics: one ``end_step()`` is exactly one ``parallel_env.step(actions)``.

* In a *sub-step* each role may queue at most one decision (``triage_patient``,
  ``dispense_drug``, ``serve_patient``); nothing happens until ``end_step()``.
* ``end_step()`` submits the queued decisions as the joint action; a role that queued
  nothing submits ``END`` (as the env does for a missing agent): it ends that role's
  turn for the current 10-minute time step if the role had anything legal to do, and is
  a pass otherwise. The env applies nurse → pharmacist → consultant; the time step
  advances once all three roles are done (chose END, spent their capacity, or have
  nothing legal) — ``time_advanced`` in the reply says so.
* A decision is accepted only if the env's action mask allows it at the start of the
  sub-step, with the env's one exception: a patient the nurse triages in this sub-step
  may be dosed in it. An illegal decision (unknown id, bad category or drug, a patient
  not servable, a role that already acted) raises
  :class:`~envs.classic.tool_session.ToolError` and changes nothing, so the env never
  sees an illegal action through this API.
* ``step_reward`` is the team reward of the sub-step (the sum of every named term, what
  each agent gets with ``reward_mode="team"``), unrounded; ``rewards`` and
  ``reward_terms`` are per agent, as the env's ``infos``.

Observations never expose the true severity: ``get_queue_state(role)`` shows what each
role's observation holds (the nurse and pharmacist read the chart; the consultant sees
the triage category, or the self-report before triage). The truth appears only in
``finalize_episode`` (served detail, grader, KPIs), as in the classic tools.

Example::

    s = EdToolSession()
    s.start_task("basic_triage", seed=42)
    while not s.get_queue_state()["done"]:
        view = s.get_queue_state()
        nurse = [p for p in view["triage_nurse"]["patients"] if p["can_triage"]]
        if nurse:
            s.triage_patient(nurse[0]["patient_id"], nurse[0]["self_reported_urgency"])
        doc = [p for p in view["consultant"]["patients"] if p["can_serve"]]
        if doc:
            s.serve_patient(doc[0]["patient_id"])
        s.end_step()
    print(s.finalize_episode()["score"])
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from gymnasium import error as gym_error

from envs.classic.tool_session import ToolError, ToolSession, task_header, task_names
from envs.clinical.presentation import Drug
from envs.ed import codec
from envs.ed.config import AGENTS, DRUGS, N_CATEGORIES, ROLE_OF, EdConfig, Place, Role
from envs.ed.engine import EdState, masks
from envs.ed.parallel_env import NORMALISERS, EdTriageParallelEnv
from envs.ed.suite import SCENARIOS
from envs.ed.tool_views import (
    DEPARTURES,
    ED_RULESET,
    ED_WORKFLOW,
    V1_WORKFLOW,
    EdToolViews,
    condition_label,
    default_version,
    pharmacist_pairs_if_triaged,
    suite_task_rows,
    task_versions,
)
from envs.ed.v1 import ED_ENVS
from envs.rulesets import RULESETS
from envs.tasks import TASKS
from envs.validation import check_seed

ROLE_ALIASES = {"nurse": "triage_nurse", "triage": "triage_nurse", "doctor": "consultant"}


class EdToolSession(EdToolViews):
    """One session of the ``ed`` tools; holds at most one active episode.

    ``config`` and ``normaliser`` are passed to the env (``reward_mode`` is always
    ``"team"``); ``config=None`` plays each task with its own config of the version
    (v0: ``EdConfig()``; v1: :data:`~envs.ed.config.V1` or the scenario's)."""

    def __init__(self, config: EdConfig | None = None, normaliser: str = "oracle") -> None:
        if normaliser not in NORMALISERS:
            raise ValueError(f"normaliser must be one of {NORMALISERS}, got {normaliser!r}")
        self._config = config
        self.normaliser = normaliser
        self.version: str | None = None
        self.episode_id = str(uuid.uuid4())
        self.step_count = 0  # successful tool calls, as ToolSession counts them
        self.cumulative_reward = 0.0  # team reward of the current episode
        self.finalized_scores: dict[str, float] = {}
        self.task_id: str | None = None
        self._task_arg: str | None = None
        self.ruleset: str | None = None
        self.seed: int | None = None
        self.env: EdTriageParallelEnv | None = None
        self.parallel_steps = 0
        self._slot_of: dict[str, int] = {}
        self._queued: dict[Role, tuple[int, str]] = {}
        self._final: dict[str, Any] | None = None

    @property
    def config(self) -> EdConfig:
        """The config of the current episode's env (before any: the session's)."""
        if self.env is not None:
            return self.env.config
        return self._config or EdConfig()

    # -- tools ---------------------------------------------------------------------------
    def list_tasks(self) -> list[dict]:
        fixed = [
            {**t, "rulesets": list(RULESETS), "versions": task_versions(t["task_id"])}
            for t in ToolSession().list_tasks()
        ]
        return fixed + suite_task_rows()

    def start_task(
        self,
        task_id: str,
        seed: int | None = None,
        ruleset: str = ED_RULESET,
        version: str | None = None,
    ) -> dict:
        if ruleset != ED_RULESET:
            raise ToolError(
                "bad_argument",
                f"EdToolSession plays ruleset 'ed' only, got {ruleset!r}; "
                "use envs.classic.tool_session.ToolSession for 'classic'",
            )
        try:
            check_seed(seed)
        except ValueError as e:
            raise ToolError("bad_argument", f"start_task: {e}") from None
        version = self._version_arg(task_id, version)
        try:
            env = ED_ENVS[version](
                task=task_id, ruleset=ED_RULESET, config=self._config, normaliser=self.normaliser
            )
        except (ValueError, TypeError) as e:
            raise ToolError("bad_argument", f"start_task: {e}") from None
        try:
            env.reset(seed=seed) if seed is not None else env.reset()
        except (ValueError, gym_error.Error) as e:  # e.g. a negative seed
            raise ToolError("bad_argument", f"start_task: {e}") from None
        s = env.state
        assert s is not None
        self.env, self.seed, self.version = env, seed, version
        self._task_arg = task_id
        self.task_id, self.ruleset = env.task.name, ED_RULESET
        self._slot_of = {p.patient_id: p.slot for p in s.scenario.patients}
        self._queued = {}
        self._final = None
        self.cumulative_reward = 0.0
        self.parallel_steps = 0
        self.step_count += 1
        task = env.task
        scenario = SCENARIOS.get(task_id)
        return {
            **task_header(task, seed, ED_RULESET),
            "version": version,
            **({"challenge": scenario.challenge} if scenario is not None else {}),
            "roles": list(AGENTS),
            "capacities": {r.agent: self.config.capacity(r, task.num_doctors) for r in Role},
            "drugs": [d.value for d in DRUGS],
            "state": self._view(None),
            "workflow": ED_WORKFLOW + (V1_WORKFLOW if self.config.is_v1 else ""),
        }

    def get_queue_state(self, role: str | None = None) -> dict:
        self._active()
        agent = self._role_arg(role)
        self.step_count += 1
        return self._view(agent)

    def triage_patient(self, patient_id: str, category: int) -> dict:
        s = self._acting()
        slot = self._slot(patient_id, "triage_patient")
        if isinstance(category, bool) or not isinstance(category, int):
            raise ToolError(
                "bad_argument", f"triage_patient: category must be an integer 1-5, got {category!r}"
            )
        if not 1 <= category <= N_CATEGORIES:
            raise ToolError(
                "bad_argument",
                f"triage_patient: category must be 1 (immediate) to {N_CATEGORIES} "
                f"(non-urgent), got {category}",
            )
        self._not_queued(Role.NURSE)
        action = codec.nurse_action(slot, category)
        if not self._masks()[Role.NURSE][action]:
            raise ToolError("illegal_action", self._why_not_triage(s, slot, patient_id))
        return self._queue(Role.NURSE, action, f"triage {patient_id} -> {category}")

    def dispense_drug(self, patient_id: str, drug: str) -> dict:
        s = self._acting()
        slot = self._slot(patient_id, "dispense_drug")
        d = self._drug(drug)
        self._not_queued(Role.PHARMACIST)
        action = codec.pharmacist_action(slot, d)
        if not self._can_dispense(s, slot, d):
            raise ToolError("illegal_action", self._why_not_dispense(s, slot, d, patient_id))
        return self._queue(Role.PHARMACIST, action, f"{DRUGS[d].value} -> {patient_id}")

    def serve_patient(self, patient_id: str) -> dict:
        s = self._acting()
        slot = self._slot(patient_id, "serve_patient")
        self._not_queued(Role.CONSULTANT)
        if not self._masks()[Role.CONSULTANT][slot]:
            raise ToolError("illegal_action", self._why_not_serve(s, slot, patient_id))
        return self._queue(Role.CONSULTANT, slot, f"serve {patient_id}")

    def end_step(self) -> dict:
        """Apply the queued decisions as one ``parallel_env.step(actions)``."""
        s = self._acting()
        env = self.env
        assert env is not None
        before_step = s.step
        before_cond = s.condition.copy()
        before_waiting = s.place == Place.WAITING
        before_place = s.place.copy()
        applied = {r.agent: self._queued[r][1] if r in self._queued else "END" for r in Role}
        queued, self._queued = self._queued, {}
        actions = {r.agent: a for r, (a, _) in queued.items()}
        _, rewards, _, _, infos = env.step(actions)
        self.parallel_steps += 1
        self.step_count += 1
        team = float(rewards["consultant"])  # team mode: every agent gets the team reward
        self.cumulative_reward += team
        info = infos["consultant"]
        events = [v for v in applied.values() if v != "END"]
        if Role.PHARMACIST in queued:
            terms = infos["pharmacist"]["reward_terms"]
            outcome = (
                "adverse event" if terms["adverse_event"]
                else "deterioration prevented" if terms["prevented_deterioration"]
                else "given"
            )  # fmt: skip
            events[events.index(applied["pharmacist"])] += f": {outcome}"
        waiting_now = s.place == Place.WAITING
        for slot in np.flatnonzero(before_waiting & waiting_now & (s.condition != before_cond)):
            pid = s.scenario.patients[slot].patient_id
            events.append(f"{pid} condition -> {condition_label(s.condition[slot])}")
        for place, what in DEPARTURES.items():
            for slot in np.flatnonzero((s.place == place) & (before_place != place)):
                events.append(f"{s.scenario.patients[slot].patient_id} {what}")
        if s.step != before_step:
            events.append(f"time advanced to step {s.step}")
            new = [s.scenario.patients[i].patient_id for i in s.arrivals_at.get(s.step, ())]
            if new and not s.done:
                events.append("arrived: " + ", ".join(new))
        out: dict[str, Any] = {
            "action": "end_step()",
            "applied": applied,
            "step_reward": team,
            "rewards": {a: float(r) for a, r in rewards.items()},
            "reward_terms": {a: dict(infos[a]["reward_terms"]) for a in rewards},
            "time_advanced": bool(info["time_advanced"]),
            "events": events,
            "done": bool(s.done),
            "state": self._view(None),
        }
        if s.done:
            keep = ("score", "grader_score", "grader", "kpis", "oracle_value")
            self._final = {k: info[k] for k in keep}
            self._final["normaliser"] = info["normaliser"]
            self._final["episode_return"] = info["episode_return"]
            self._final["episode_terms"] = {a: dict(infos[a]["episode_terms"]) for a in infos}
            out["hint"] = "Episode complete. Call finalize_episode() to get your final score."
        return out

    def finalize_episode(self) -> dict:
        s = self._active()
        env = self.env
        assert env is not None and self.task_id is not None
        if self._final is not None:
            summary = self._final
        else:  # graded so far, as the classic finalize_episode allows
            summary = env.episode_summary()
        task = s.scenario.task
        self.finalized_scores[self.task_id] = summary["score"]
        self.step_count += 1
        return {
            **task_names(task),
            "ruleset": ED_RULESET,
            "version": self.version,
            "seed": self.seed,
            "score": summary["score"],
            "grader_score": summary["grader_score"],
            "normalised": self._normalised(summary),
            "grader": summary["grader"],
            "kpis": summary["kpis"],
            "oracle_value": summary["oracle_value"],
            "normaliser": summary["normaliser"],
            "episode_complete": bool(s.done),
            "episode_steps": int(s.step),
            "parallel_steps": self.parallel_steps,
            "team_return": self.cumulative_reward,
            "episode_terms": summary.get("episode_terms"),
            "patients_served": len(s.served),
            "served_detail": [r.as_dict() for r in s.served],
            "missed_emergencies": int(s.missed_emergencies),
            "tasks_completed": len(self.finalized_scores),
            "tasks_total": len(TASKS),
            "all_done": len(self.finalized_scores) >= len(TASKS),
        }

    def get_current_state(self) -> dict:
        s = self.env.state if self.env is not None else None
        return {
            "episode_id": self.episode_id,
            "step_count": self.step_count,
            "active_task": self.task_id,
            "ruleset": self.ruleset,
            "version": self.version,
            "seed": self.seed,
            "finalized_scores": dict(self.finalized_scores),
            "cumulative_reward": round(self.cumulative_reward, 4),
            "episode_done": None if s is None else bool(s.done),
            "queued": {r.agent: d for r, (_, d) in self._queued.items()},
            "done": len(self.finalized_scores) >= len(TASKS),
            "tasks_available": list(TASKS),
        }

    def _normalised(self, summary: dict) -> float | None:
        """(R − R_random) / (R_bound − R_random) of a complete, seeded episode, as
        :func:`agents.ed_evaluation.evaluate_teams` reports it (the random team seeded
        like the episode); None where it is undefined (unseeded, unfinished, or graded
        against the static normaliser instead of the bound)."""
        if self._final is None or self.seed is None or self.normaliser != "oracle":
            return None  # _final: set once the episode is complete
        if "normalised" in self._final:  # one random-team replay per episode
            return self._final["normalised"]
        from agents.ed_evaluation import random_team_reward  # agents: only when graded
        from envs.ed.graders import normalised_score

        env = self.env
        assert env is not None
        # The static normaliser: the random episode needs no second bound solve.
        twin = type(env)(task=self._task_arg, config=self._config, normaliser="static")
        r_random = random_team_reward(twin, self.seed)
        out = normalised_score(
            summary["grader"]["cumulative_reward"], r_random, summary["oracle_value"]
        )
        self._final["normalised"] = out
        return out

    def _version_arg(self, task_id: Any, version: Any) -> str:
        if version is None:
            return default_version(task_id) if isinstance(task_id, str) else "v0"
        if not isinstance(version, str) or version not in ED_ENVS:
            raise ToolError(
                "bad_argument",
                f"start_task: unknown version {version!r}; choose one of "
                f"{', '.join(ED_ENVS)} (or null: v1 for the suite scenarios, v0 otherwise)",
            )
        if isinstance(task_id, str) and version not in task_versions(task_id):
            raise ToolError(
                "bad_argument",
                f"start_task: scenario {task_id!r} exists in version "
                f"{' or '.join(task_versions(task_id))} only; pass version='v1' or null",
            )
        return version

    # -- checks --------------------------------------------------------------------------
    def _active(self) -> EdState:
        if self.env is None or self.env.state is None:
            raise ToolError(
                "no_active_task", "No active task. Call start_task(task_id, ruleset='ed') first."
            )
        return self.env.state

    def _acting(self) -> EdState:
        s = self._active()
        if s.done:
            raise ToolError(
                "episode_finished",
                f"Episode complete after {s.step} steps. Call finalize_episode(), "
                "or start_task() for a new episode.",
            )
        return s

    def _masks(self) -> dict[Role, np.ndarray]:
        """The masks the env judges this sub-step's actions by (the state has not
        changed since the last step, so they equal the env's own)."""
        return masks(self._active())

    def _role_arg(self, role: str | None) -> str | None:
        if role is None:
            return None
        agent = ROLE_ALIASES.get(role, role) if isinstance(role, str) else None
        if agent not in ROLE_OF:
            raise ToolError(
                "bad_argument",
                f"get_queue_state: unknown role {role!r}; roles: {', '.join(AGENTS)} "
                "(or omit it for all three)",
            )
        return agent

    def _slot(self, patient_id: Any, tool: str) -> int:
        s = self._active()
        if not isinstance(patient_id, str):
            raise ToolError(
                "bad_argument", f"{tool}: patient_id must be a string such as 'P001', got "
                f"{patient_id!r}",
            )  # fmt: skip
        slot = self._slot_of.get(patient_id)
        if slot is None:
            waiting = [s.scenario.patients[i].patient_id for i in s.waiting()]
            raise ToolError(
                "bad_argument",
                f"{tool}: unknown patient {patient_id!r}; waiting now: "
                f"{', '.join(waiting) or 'nobody'} (see get_queue_state())",
            )
        return slot

    def _drug(self, drug: Any) -> int:
        try:
            d = Drug(drug)
        except ValueError:
            raise ToolError(
                "bad_argument",
                f"dispense_drug: unknown drug {drug!r}; the formulary: "
                f"{', '.join(x.value for x in DRUGS)}",
            ) from None
        return DRUGS.index(d)

    def _not_queued(self, role: Role) -> None:
        if role in self._queued:
            raise ToolError(
                "already_acted",
                f"{role.agent} already acted in this sub-step ({self._queued[role][1]}); "
                "call end_step() to apply it, then act again",
            )

    def _queue(self, role: Role, action: int, what: str) -> dict:
        self._queued[role] = (action, what)
        self.step_count += 1
        return {
            "action": what,
            "role": role.agent,
            "queued": {r.agent: d for r, (_, d) in sorted(self._queued.items())},
            "hint": "Queue the other roles' decisions, then call end_step() to apply them.",
        }

    def _can_dispense(self, s: EdState, slot: int, d: int) -> bool:
        return bool(self._dispensable(s, slot, self._masks()[Role.PHARMACIST])[d])

    def _dispensable(self, s: EdState, slot: int, mask: np.ndarray) -> np.ndarray:
        """Drugs (bool, N_DRUGS) the pharmacist may give ``slot`` in this sub-step."""
        ok = codec.slot_mask(Role.PHARMACIST, mask, slot).astype(bool)
        # The env's exception: a patient the nurse triages in this very sub-step.
        nurse = self._queued.get(Role.NURSE)
        same_slot = nurse is not None and codec.action_slot(Role.NURSE, nurse[0]) == slot
        if same_slot and s.triaged[slot] == 0:
            ok |= pharmacist_pairs_if_triaged(s, slot)
        return ok


def __getattr__(name: str) -> Any:
    # Lazily, to avoid an import cycle: envs.ruleset_session builds on this module.
    if name == "MultiRulesetSession":
        from envs.ruleset_session import MultiRulesetSession

        return MultiRulesetSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ED_WORKFLOW", "EdToolSession"]

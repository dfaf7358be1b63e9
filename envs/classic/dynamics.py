"""``classic`` dynamics: Queue Doctor's queue MDP, bit for bit (docs/spec.md §2.1).

The state is an explicit :class:`ClassicState`; the transition functions
(:func:`serve`, :func:`wait`) take it and an action and update it in place, returning a
:class:`Transition`. Nothing else holds episode state, so any API layer (tool API,
Gymnasium, PettingZoo, the oracle) is a thin translation over these functions, and a
state can be copied with :meth:`ClassicState.copy` for search.

Patients are addressed by *slot*: their index in arrival order (see
:mod:`envs.classic.scenario`). Queue Doctor keeps its queue in that order too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from envs.reward import (
    UNKNOWN_PATIENT_PENALTY,
    serve_rewards,
    wait_penalty,
)
from envs.types import NO_COUNTDOWN, Condition, Scenario

MASS_CASUALTY_EVENT_SIZE = 4
"""Arrivals in one step that Queue Doctor announces as a mass-casualty event."""


class Outcome(IntEnum):
    """What an action did. Only ``BLOCKED`` leaves time where it was."""

    SERVED = 0
    WAITED = 1
    UNKNOWN_PATIENT = 2
    BLOCKED = 3


# Hot-path aliases: reading a member off an Enum class is a Python-level lookup
# (~90 ns on 3.11), a module global a dict one.
SERVED, WAITED, UNKNOWN_PATIENT, BLOCKED = (
    Outcome.SERVED,
    Outcome.WAITED,
    Outcome.UNKNOWN_PATIENT,
    Outcome.BLOCKED,
)
_CRITICAL, _AT_RISK = Condition.CRITICAL, Condition.AT_RISK


class ServedRecord(NamedTuple):
    """One served patient, as Queue Doctor's ``served`` list records it (a NamedTuple:
    immutable like a frozen dataclass, and built several times faster on every serve)."""

    slot: int
    patient_id: str
    true_severity: int
    reported_severity: int
    wait_time: int
    reward: float  # rounded to 4 places, as the graders sum it
    served_step: int

    def as_dict(self) -> dict:
        return {
            "patient_id": self.patient_id,
            "true_severity": self.true_severity,
            "reported_severity": self.reported_severity,
            "wait_time": self.wait_time,
            "reward": self.reward,
            "served_step": self.served_step,
        }


@dataclass(slots=True)
class Transition:
    reward: float
    outcome: Outcome
    slot: int | None = None  # the patient served or refused (None: wait / unknown id)
    events: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClassicState:
    """Mutable state of one ``classic`` episode. Per-slot lists are indexed by slot."""

    scenario: Scenario
    step: int
    queue: list[int]  # slots waiting, in queue (= arrival) order
    severity: list[int]  # current true severity
    reported: list[int]  # reported severity (becomes the truth on deterioration)
    countdown: list[int]
    condition: list[Condition]
    wait: list[int]
    icu_available: int
    doctors_available: int
    missed_emergencies: int = 0
    cumulative_reward: float = 0.0
    served: list[ServedRecord] = field(default_factory=list)
    step_rewards: list[float] = field(default_factory=list)
    # Precomputed from the scenario: slots arriving at each step.
    arrivals_at: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.step >= self.scenario.task.max_steps

    def copy(self, scenario: Scenario | None = None) -> ClassicState:
        """An independent copy (``scenario``: the copy's, e.g. the same patients under
        another seed; default this state's). Built slot by slot, without the generated
        ``__init__``'s keyword handling: it is on the reset path and the oracle's."""
        new = _new_state(ClassicState)
        new.scenario = self.scenario if scenario is None else scenario
        new.step = self.step
        new.queue = self.queue[:]
        new.severity = self.severity[:]
        new.reported = self.reported[:]
        new.countdown = self.countdown[:]
        new.condition = self.condition[:]
        new.wait = self.wait[:]
        new.icu_available = self.icu_available
        new.doctors_available = self.doctors_available
        new.missed_emergencies = self.missed_emergencies
        new.cumulative_reward = self.cumulative_reward
        new.served = self.served[:]
        new.step_rewards = self.step_rewards[:]
        new.arrivals_at = self.arrivals_at
        return new


_new_state = object.__new__
_new_tuple = tuple.__new__


def initial_state(scenario: Scenario) -> ClassicState:
    """State at step 0: the step-0 arrivals are queued (no countdown or wait tick)."""
    pats = scenario.patients
    arrivals_at: dict[int, list[int]] = {}
    for p in pats:
        arrivals_at.setdefault(p.arrival_step, []).append(p.slot)
    task = scenario.task
    return ClassicState(
        scenario=scenario,
        step=0,
        queue=list(arrivals_at.get(0, ())),
        severity=[p.severity for p in pats],
        reported=[p.reported_severity for p in pats],
        countdown=[p.deterioration_countdown for p in pats],
        condition=[Condition.STABLE] * len(pats),
        wait=[0] * len(pats),
        icu_available=task.icu_beds,
        doctors_available=task.num_doctors,
        arrivals_at={k: tuple(v) for k, v in arrivals_at.items()},
    )


def doctors_needed(state: ClassicState, slot: int) -> int:
    return 2 if state.scenario.patients[slot].requires_specialist else 1


def can_serve(state: ClassicState, slot: int) -> bool:
    """Resources allow serving this queued patient now (doctors, ICU bed)."""
    p = state.scenario.patients[slot]
    return state.doctors_available >= (2 if p.requires_specialist else 1) and (
        not p.requires_icu or state.icu_available >= 1
    )


def blocked_reason(state: ClassicState, slot: int) -> str | None:
    """Queue Doctor's ``cannot_serve_reason`` (ICU is reported before doctors)."""
    if can_serve(state, slot):
        return None
    p = state.scenario.patients[slot]
    if p.requires_icu and state.icu_available == 0:
        return "No ICU beds available"
    need = doctors_needed(state, slot)
    if state.doctors_available < need:
        return f"Needs {need} doctors, only {state.doctors_available} available"
    return None


def serve(state: ClassicState, slot: int | None, log: bool = False) -> Transition:
    """Serve the queued patient in ``slot``; ``None`` (or a slot not queued) is an
    unknown patient. ``patient_id`` is only used in messages."""
    events: list[str] = []
    queue = state.queue
    if slot is None or slot not in queue:
        pid = "?" if slot is None else state.scenario.patients[slot].patient_id
        return unknown_patient(state, pid, log)
    p = state.scenario.patients[slot]
    need = 2 if p.requires_specialist else 1
    if state.doctors_available < need:
        if log:
            events.append(
                f"Cannot serve {p.patient_id}: needs {need} doctors, "
                f"{state.doctors_available} available. Choose another patient."
            )
        return Transition(0.0, BLOCKED, slot, events)
    if p.requires_icu and state.icu_available < 1:
        if log:
            events.append(
                f"Cannot admit {p.patient_id}: no ICU beds available. Choose a non-ICU patient."
            )
        return Transition(0.0, BLOCKED, slot, events)

    queue.remove(slot)
    state.doctors_available -= need
    if p.requires_icu:
        state.icu_available -= 1
    sev, w = state.severity[slot], state.wait[slot]
    reward, rounded = serve_rewards(sev, w)
    state.cumulative_reward += reward
    step = state.step
    # slot, patient_id, true_severity, reported_severity, wait_time, reward, served_step;
    # tuple.__new__ directly: the NamedTuple's own __new__ is a Python-level call.
    state.served.append(
        _new_tuple(ServedRecord, (slot, p.patient_id, sev, state.reported[slot], w, rounded, step))
    )
    if log:
        note = " [2 doctors used]" if p.requires_specialist else ""
        if p.requires_icu:
            note += (
                f" [ICU bed consumed, {state.icu_available}/"
                f"{state.scenario.task.icu_beds} remaining]"
            )
        # Queue Doctor also prints the true severity here; we do not reveal it.
        events.append(
            f"Step {step}: Served {p.patient_id} (reported={state.reported[slot]}, "
            f"waited {w} steps) -> reward {reward:.3f}{note}"
        )
    state.step = step + 1
    _advance(state, events if log else None)  # also gives the doctors back
    state.step_rewards.append(reward)
    return Transition(reward, SERVED, slot, events)


def unknown_patient(state: ClassicState, pid: str, log: bool = False) -> Transition:
    """Serve of an id that is not in the queue: −0.1 and time advances."""
    events = [f"Error: Patient {pid} not found in queue."] if log else []
    state.step += 1
    _advance(state, None)  # Queue Doctor drops this advance's events
    state.step_rewards.append(UNKNOWN_PATIENT_PENALTY)
    state.cumulative_reward -= 0.1
    return Transition(UNKNOWN_PATIENT_PENALTY, UNKNOWN_PATIENT, None, events)


def wait(state: ClassicState, log: bool = False) -> Transition:
    """Skip the step; penalised by the reported severities of *servable* patients."""
    pats, reported = state.scenario.patients, state.reported
    doctors, icu = state.doctors_available, state.icu_available
    # can_serve, inlined (one call per queued patient otherwise).
    servable = [
        reported[s]
        for s in state.queue
        if doctors >= (2 if pats[s].requires_specialist else 1)
        and (icu >= 1 or not pats[s].requires_icu)
    ]
    penalty = wait_penalty(servable)
    events: list[str] = []
    if log:
        if servable:
            emergencies = servable.count(1)
            urgent = sum(1 for r in servable if 2 <= r <= 3)
            if emergencies:
                events.append(
                    f"Waited with {emergencies} IMMEDIATE servable patient(s)! "
                    f"Penalty: {penalty:.2f}"
                )
            elif urgent:
                events.append(f"Waited with {urgent} urgent servable patient(s). Penalty: -0.10")
            else:
                events.append("Waited with non-urgent servable patients. Penalty: -0.05")
        elif state.queue:
            events.append(
                f"Step {state.step}: {len(state.queue)} patient(s) present but all "
                "resource-blocked -- no penalty. Missed emergencies tracked at finalize."
            )
        else:
            events.append(f"Step {state.step}: Queue empty -- no penalty.")
    state.cumulative_reward += penalty
    state.step += 1
    _advance(state, events if log else None)
    state.step_rewards.append(penalty)
    return Transition(penalty, WAITED, None, events)


def _advance(state: ClassicState, events: list[str] | None) -> None:
    """Enter ``state.step``: arrivals, deterioration, wait ticks, missed emergencies."""
    pats = state.scenario.patients
    queue = state.queue
    new = state.arrivals_at.get(state.step)
    if new:
        queue.extend(new)
        if events is not None:
            names = ", ".join(f"{pats[s].patient_id}(reported={state.reported[s]})" for s in new)
            events.append(f"Step {state.step}: New arrivals -- {names}")
            if len(new) >= MASS_CASUALTY_EVENT_SIZE:
                events.append(f"MASS CASUALTY EVENT: {len(new)} patients arrived simultaneously!")
    countdown, severity, wait_ = state.countdown, state.severity, state.wait
    missed = 0
    # The original deteriorates the whole queue, then ticks every wait (two loops);
    # a patient's tick and missed count read only its own, already final, severity,
    # so one loop gives the same state and the same events.
    for s in queue:
        if countdown[s] > 0:
            countdown[s] -= 1
            if countdown[s] == 0:
                old = severity[s]
                severity[s] = max(1, old - 1)
                state.reported[s] = severity[s]
                state.condition[s] = _CRITICAL if severity[s] == 1 else _AT_RISK
                countdown[s] = NO_COUNTDOWN
                if events is not None:
                    events.append(
                        f"DETERIORATION: {pats[s].patient_id} worsened "
                        f"severity {old}->{severity[s]}"
                    )
        wait_[s] += 1
        if severity[s] == 1:
            missed += 1
    state.missed_emergencies += missed
    state.doctors_available = state.scenario.task.num_doctors

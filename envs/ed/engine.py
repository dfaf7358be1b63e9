"""``ed`` dynamics (docs/spec.md §2.2): the transition :func:`substep` over an explicit
mutable :class:`EdState` (defined with the masks in :mod:`envs.ed.state`), shared by every
API (PettingZoo, Gymnasium, the oracle).

Time. A time step (10 minutes) is a sequence of *sub-steps*. In a sub-step each role
submits one action (encoded as in :mod:`envs.ed.codec`), applied in the order nurse →
pharmacist → consultant:

* nurse ``slot * 5 + (category - 1)`` triages (or re-triages) a waiting patient;
* pharmacist ``slot * N_DRUGS + drug`` gives a drug to a waiting, triaged patient;
* consultant ``slot`` serves a waiting patient (a specialist takes 2 doctor slots, an
  ICU patient the ICU bed, consumed for good);
* the last action of each role, ``END``, ends its turn for this time step.

Each role has a budget per time step (``triage_capacity``, ``dispense_capacity``,
the doctors). A role is *done* once it chose END while it had something else legal,
spent its budget, or has no legal action but END (END is then a *pass*: the role
reopens if another role's action gives it something to do, e.g. a patient just
triaged). When all three are done, time advances. An illegal (masked-out) action is
a counted no-op with a small penalty and spends one unit of budget, so every time
step ends after at most ``triage + dispense + doctors + 1`` sub-steps whatever the
actions.

Advancing time, in order: the idle terms of the finished step; −0.03 per true
category-1 patient still waiting (also counted as a missed-emergency step); step + 1;
deterioration countdowns of patients who waited through the step tick (at 0:
severity −1, condition at_risk / critical, self-report := truth); arrivals of the new
step join (wait 0); budgets refill. Wait = steps since arrival (Queue Doctor ticks an
arrival in its first step; ``ed`` does not).

v1 mechanisms (on when :class:`~envs.ed.config.EdConfig` sets them; see
:mod:`envs.ed.v1`): a serve occupies its doctor slots for
``config.duration(true category)`` steps (:attr:`EdState.busy` holds the slots
committed to later steps); with ``serve_requires_triage`` only triaged patients are
servable and END by the pharmacist/consultant is a pass while the nurse can still
triage; after the deterioration ticks, :func:`departures` removes the waiting
patients who die (true category 1 for ``death_wait`` steps) or leave without being
seen (wait ≥ the patience of their true category), each with its shared term.

Serve reward: Queue Doctor's table on the true severity, but never more than the
table gives for the severity at arrival — deterioration must not pay (in the original
a deteriorated patient can be worth more, so letting patients worsen can be optimal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.classic.dynamics import ServedRecord
from envs.ed import codec
from envs.ed.config import (
    ADVERSE_EVENT,
    DEATH,
    DRUGS,
    HIGH_ALERT_DRUGS,
    IDLE_DOCTORS,
    IDLE_TRIAGE,
    ILLEGAL_ACTION,
    LWBS,
    PREVENTED_DETERIORATION,
    SERVE,
    UNDER_TRIAGE,
    WAITING_IMMEDIATE,
    Place,
    Role,
)
from envs.ed.state import (  # noqa: F401 (the state and legality, re-exported: users import them here)
    EdState,
    action_sizes,
    consultant_slots,
    end_action,
    initial_state,
    masks,
    nurse_slots,
    pharmacist_pairs,
)
from envs.reward import REWARD_DECIMALS, fast_serve_reward
from envs.types import NO_COUNTDOWN, Condition

_HIGH_ALERT = np.array([d in HIGH_ALERT_DRUGS for d in DRUGS])
_ROLES = tuple(Role)
_NURSE, _PHARMACIST, _CONSULTANT = _ROLES  # plain names: enum class lookups are slow
_WAITING, _SERVED, _LEFT = int(Place.WAITING), int(Place.SERVED), int(Place.LEFT)
_LWBS, _DIED = int(Place.LWBS), int(Place.DIED)
UNDER_TRIAGE_LEVELS = 2  # assigned ≥ true + 2 on a true 1–2 is an under-triage event


def ed_serve_reward(
    severity: int, arrival_severity: int, wait: int, critical_wait: int | None = None
) -> float:
    """Serve reward of docs/spec.md §2.1 on the true severity, capped by the arrival severity's.
    v1 ``critical_clock``: a patient who became category 1 while waiting is valued on
    the category-1 cliff from that moment (``critical_wait`` steps ago), still capped."""
    r = fast_serve_reward(severity, wait if critical_wait is None else critical_wait)
    if severity != arrival_severity:
        r = min(r, fast_serve_reward(arrival_severity, wait))
    return r


# ---------------------------------------------------------------- transitions
@dataclass
class SubstepResult:
    """Reward terms per role (shared terms are booked under the consultant for
    ``serve`` and under no role for ``waiting_immediate``: see :data:`shared`)."""

    terms: dict[Role, dict[str, float]]
    shared: dict[str, float]
    illegal: list[bool]
    advanced: bool
    events: list[str]
    masks: dict[Role, np.ndarray] | None = None
    """The masks after the sub-step (time advanced or not): ``masks(s)`` of the new state."""


def _deteriorate(s: EdState, slot: int) -> None:
    sev = max(1, int(s.severity[slot]) - 1)
    s.severity[slot] = sev
    s.reported[slot] = sev
    s.condition[slot] = Condition.CRITICAL if sev == 1 else Condition.AT_RISK
    s.deteriorations += 1
    if sev == 1 and s.crit_since[slot] < 0:
        s.crit_since[slot] = s.step


def _nurse(s: EdState, a: int, terms: dict[str, float], log: list[str] | None) -> None:
    """Apply the nurse's (legal, non-END) action."""
    slot, cat = codec.decode_nurse(a)
    s.budget[_NURSE] -= 1
    s.triaged[slot] = cat
    s.triage_condition[slot] = s.condition[slot]
    true = int(s.severity[slot])
    s.triage_true[slot] = true
    s.triage_actions += 1
    if true <= 2 and cat >= true + UNDER_TRIAGE_LEVELS:
        s.under_triage_events += 1
        terms[UNDER_TRIAGE] = terms.get(UNDER_TRIAGE, 0.0) + s.config.rewards.under_triage
    if log is not None:
        log.append(f"triage {s.scenario.patients[slot].patient_id} -> {cat}")


def _pharmacist(s: EdState, a: int, terms: dict[str, float], log: list[str] | None) -> None:
    slot, d = codec.decode_pharmacist(a)
    s.budget[_PHARMACIST] -= 1
    s.given[slot, d] = True
    s.stock[d] -= 1
    s.doses += 1
    sc = s.scenario
    indicated = sc.indicated[slot] == d
    r = s.config.rewards
    if sc.allergies[slot, d] or (_HIGH_ALERT[d] and not indicated):
        s.adverse_events += 1
        _deteriorate(s, slot)
        terms[ADVERSE_EVENT] = terms.get(ADVERSE_EVENT, 0.0) + r.adverse_event
        what = "adverse event"
    elif indicated and s.countdown[slot] > 0:
        s.countdown[slot] = NO_COUNTDOWN
        s.prevented += 1
        terms[PREVENTED_DETERIORATION] = (
            terms.get(PREVENTED_DETERIORATION, 0.0) + r.prevented_deterioration
        )
        what = "deterioration prevented"
    else:
        what = "given"
    if log is not None:
        log.append(f"{DRUGS[d].value} -> {sc.patients[slot].patient_id}: {what}")


def _consultant(s: EdState, a: int, shared: dict[str, float], log: list[str] | None) -> None:
    slot = a
    s.budget[_CONSULTANT] -= int(s.need[slot])
    if s.icu[slot]:
        s.icu_available -= 1
    s.place[slot] = _SERVED
    sev = int(s.severity[slot])
    if s.busy is not None:  # v1: the treatment keeps its doctors for later steps too
        s.busy[s.step + 1 : s.step + s.config.duration(sev)] += int(s.need[slot])
    w = s.step - int(s.arrival[slot])
    arrived_as = int(s.arrival_severity[slot])
    crit_wait = (
        s.step - int(s.crit_since[slot])
        if s.config.critical_clock and sev == 1 and arrived_as > 1
        else None
    )
    reward = ed_serve_reward(sev, arrived_as, w, crit_wait)
    shared[SERVE] = shared.get(SERVE, 0.0) + reward
    p = s.scenario.patients[slot]
    s.served.append(
        ServedRecord(
            slot=slot,
            patient_id=p.patient_id,
            true_severity=sev,
            reported_severity=int(s.reported[slot]),
            wait_time=w,
            reward=round(reward, REWARD_DECIMALS),
            served_step=s.step,
        )
    )
    if log is not None:
        log.append(f"serve {p.patient_id} (waited {w}) -> {reward:.3f}")


def _waits_for_triage(s: EdState, role: Role, start_masks: dict[Role, np.ndarray]) -> bool:
    """v1 (``serve_requires_triage``): END by the pharmacist or consultant is a pass
    when the nurse could still triage at the start of the sub-step (when they chose)."""
    if role is _NURSE or not s.config.serve_requires_triage:
        return False
    return np.count_nonzero(start_masks[_NURSE]) > 1  # something besides END


def role_done(s: EdState, role: Role, legal: np.ndarray | None = None) -> bool:
    if s.ended[role] or s.budget[role] <= 0:
        return True
    if legal is None:
        legal = masks(s)[role]
    # == not legal[:-1].any(), without ndarray.any's Python-level overhead
    return np.count_nonzero(legal) == (legal[-1] != 0)


def substep(
    s: EdState,
    actions: tuple[int, int, int],
    log: bool = False,
    start_masks: dict[Role, np.ndarray] | None = None,
) -> SubstepResult:
    """Apply one sub-step (nurse, pharmacist, consultant actions, in Role order) and
    advance time if every role is done.

    Legality is judged on the masks at the *start* of the sub-step (the ones the
    agents saw; pass them as ``start_masks`` to skip recomputing them; the result's
    ``masks`` are the ones of the state it leaves, for the next sub-step), so an action
    is illegal when its mask entry is 0 — except a dose for a patient the nurse
    triages in this very sub-step (she acts first), which is applied. END with
    nothing else legal is a *pass*: the role stays open and may act later in the same
    time step (e.g. dose a patient the nurse has just triaged); END with something legal
    ends the role's turn.
    """
    if s.done:
        raise RuntimeError("the episode is over")
    m0 = masks(s) if start_masks is None else start_masks
    events: list[str] | None = [] if log else None
    terms: dict[Role, dict[str, float]] = {r: {} for r in _ROLES}
    shared: dict[str, float] = {}
    illegal = [False, False, False]
    for role in _ROLES:
        a = int(actions[role])
        mask = m0[role]
        end = len(mask) - 1
        if role is _PHARMACIST and 0 <= a < end and not mask[a]:
            # The one exception to mask-exact legality: the nurse acts first, so a
            # patient she triages in this sub-step may be dosed in the same sub-step.
            slot, d = codec.decode_pharmacist(a)
            if slot < s.n and pharmacist_pairs(s)[slot, d]:
                _pharmacist(s, a, terms[role], events)
                continue
        if not 0 <= a <= end or not mask[a]:
            illegal[role] = True
            s.illegal[role] += 1
            s.budget[role] = max(0, s.budget[role] - 1)
            terms[role][ILLEGAL_ACTION] = s.config.rewards.illegal_action
        elif a == end:
            if np.count_nonzero(mask) > (mask[end] != 0) and not _waits_for_triage(s, role, m0):
                s.ended[role] = True  # something but END was legal
        elif role is _NURSE:
            _nurse(s, a, terms[role], events)
        elif role is _PHARMACIST:
            _pharmacist(s, a, terms[role], events)
        else:
            _consultant(s, a, shared, events)
    s.substep += 1
    m = masks(s)
    advanced = all(role_done(s, r, m[r]) for r in _ROLES)
    if advanced:
        advance(s, terms, shared, m, events)
        m = masks(s)
    return SubstepResult(terms, shared, illegal, advanced, events or [], m)


def advance(
    s: EdState,
    terms: dict[Role, dict[str, float]],
    shared: dict[str, float],
    m: dict[Role, np.ndarray],
    events: list[str] | None = None,
) -> None:
    """End the time step: idle and waiting terms, then enter ``step + 1``."""
    r = s.config.rewards
    waiting = s.place == _WAITING
    if s.budget[_CONSULTANT] > 0:
        # Who could have been served with the doctor slots left (END or not).
        ok = waiting & (s.need <= s.budget[_CONSULTANT])
        if s.config.serve_requires_triage:
            ok &= s.triaged > 0
        servable = int((ok & ~s.icu).sum() if s.icu_available < 1 else ok.sum())
        if servable:
            idle = min(s.budget[_CONSULTANT], servable)
            terms[_CONSULTANT][IDLE_DOCTORS] = r.idle_doctor * idle
    if s.budget[_NURSE] > 0:
        untriaged = int((waiting & (s.triaged == 0)).sum())
        if untriaged:
            idle = min(s.budget[_NURSE], untriaged)
            terms[_NURSE][IDLE_TRIAGE] = r.idle_triage * idle
    immediate = int((waiting & (s.severity == 1)).sum())
    s.missed_emergencies += immediate
    if immediate:
        shared[WAITING_IMMEDIATE] = r.waiting_immediate * immediate
    s.step += 1
    for slot in np.flatnonzero(waiting & (s.countdown > 0)):
        s.countdown[slot] -= 1
        if s.countdown[slot] == 0:
            s.countdown[slot] = NO_COUNTDOWN
            _deteriorate(s, slot)
            if events is not None:
                events.append(f"deterioration: {s.scenario.patients[slot].patient_id}")
    if s.config.death_wait or s.config.lwbs_patience is not None:
        died, left = departures(s)
        for mask, place, key, what in ((died, _DIED, DEATH, "died"), (left, _LWBS, LWBS, "left")):
            k = int(np.count_nonzero(mask))
            if k:
                s.place[mask] = place
                shared[key] = getattr(r, key) * k
                if events is not None:
                    events.extend(f"{what}: {s.scenario.patients[x].patient_id}"
                                  for x in np.flatnonzero(mask))  # fmt: skip
        s.deaths += int(np.count_nonzero(died))
        s.lwbs += int(np.count_nonzero(left))
    new = s.arrivals_at.get(s.step)
    if new:
        s.place[list(new)] = _WAITING
    s.budget = [s.config.capacity(role, s.doctors) for role in _ROLES]
    if s.busy is not None:
        s.budget[_CONSULTANT] -= int(s.busy[s.step])
    s.ended = [False, False, False]
    if s.done:
        s.place[s.place == _WAITING] = _LEFT


def departures(s: EdState) -> tuple[np.ndarray, np.ndarray]:
    """v1: waiting patients who die now (true category 1 for ``death_wait`` steps) and
    who leave without being seen now (wait ≥ the patience of their true category);
    disjoint bool arrays. Pure: the caller moves them."""
    cfg = s.config
    waiting = s.place == _WAITING
    died = np.zeros(s.n, dtype=bool)
    if cfg.death_wait:
        died = waiting & (s.severity == 1) & (s.step - s.crit_since >= cfg.death_wait)
    left = np.zeros(s.n, dtype=bool)
    if cfg.lwbs_patience is not None:
        patience = np.asarray(cfg.lwbs_patience, dtype=np.int64)[s.severity - 1]
        left = waiting & ~died & (patience > 0) & (s.step - s.arrival >= patience)
    return died, left

"""The ``ed`` dynamics over a batch of episodes: :func:`substep` of
:mod:`envs.ed.engine` applied to ``B`` episodes at once with NumPy, on a
:class:`BatchState` whose per-patient arrays are ``(B, N)`` (N = the env's slots).

Same rules, same order, same floats: every rule of :mod:`envs.ed.engine` (legality on
the start masks, the pharmacist's same-sub-step exception, END as a pass, budgets,
the time advance with its idle and waiting terms, deterioration ticks, departures,
arrivals, treatment occupancy) is written here as array operations over the episodes
that take it, and the reward terms are summed in the scalar engine's order, so
``tests/test_ed_vector.py`` finds the batch equal to the scalar env step by step.
Only the v1 score (serve share) is kept for the end of an episode, not the served
records: :class:`envs.ed.vector_env.EdVectorEnv` is a throughput env; the grader dict
and the KPIs stay with the PettingZoo env.

Episodes are loaded by :func:`load_rows`, several at once, with the values
:func:`envs.ed.state.initial_state` gives; slots beyond an episode's patients stay
pending forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.ed.config import N_CATEGORIES, N_DRUGS, EdConfig, Place
from envs.ed.engine import _HIGH_ALERT, UNDER_TRIAGE_LEVELS  # the scalar rule's constants
from envs.ed.scenario import EdScenario
from envs.types import NO_COUNTDOWN, Condition

_WAITING, _SERVED, _LEFT = int(Place.WAITING), int(Place.SERVED), int(Place.LEFT)
_PENDING, _LWBS, _DIED = int(Place.PENDING), int(Place.LWBS), int(Place.DIED)
_CRITICAL, _AT_RISK = int(Condition.CRITICAL), int(Condition.AT_RISK)


@dataclass
class BatchState:
    """Mutable state of ``B`` episodes of one ``ed`` env (rows = episodes)."""

    config: EdConfig
    place: np.ndarray  # (B, N) Place codes
    severity: np.ndarray
    arrival_severity: np.ndarray
    reported: np.ndarray
    countdown: np.ndarray
    condition: np.ndarray
    triaged: np.ndarray
    triage_condition: np.ndarray
    arrival: np.ndarray
    need: np.ndarray
    icu: np.ndarray
    crit_since: np.ndarray
    indicated: np.ndarray  # drug index, -1 none
    allergies: np.ndarray  # (B, N, D) bool
    given: np.ndarray  # (B, N, D) bool
    step: np.ndarray  # (B,)
    substep: np.ndarray
    max_steps: np.ndarray
    doctors: np.ndarray
    icu_beds: np.ndarray
    icu_available: np.ndarray
    stock: np.ndarray  # (B, D)
    capacity: np.ndarray  # (B, 3) per role
    budget: np.ndarray  # (B, 3)
    ended: np.ndarray  # (B, 3) bool
    busy: np.ndarray  # (B, horizon) doctor slots committed per step (v1 treatments)
    illegal: np.ndarray  # (B, 3) counts
    served_reward: np.ndarray  # (B,) Σ rounded served rewards, in serve order
    deaths: np.ndarray
    lwbs: np.ndarray
    missed_emergencies: np.ndarray

    @property
    def batch(self) -> int:
        return self.place.shape[0]

    @property
    def n_slots(self) -> int:
        return self.place.shape[1]

    @property
    def done(self) -> np.ndarray:
        return self.step >= self.max_steps


def empty_state(config: EdConfig, batch: int, n_slots: int, max_steps: int) -> BatchState:
    """``batch`` rows of no patients (load episodes with :func:`load_rows`)."""
    B, N = batch, n_slots

    def z(dtype, *shape):
        return np.zeros((B, *shape) if shape else (B,), dtype=dtype)

    horizon = max_steps + max(config.treatment_steps or (1,)) + 1
    return BatchState(
        config=config, place=z(np.int8, N), severity=z(np.int64, N),
        arrival_severity=z(np.int64, N), reported=z(np.int64, N), countdown=z(np.int64, N),
        condition=z(np.int8, N), triaged=z(np.int8, N), triage_condition=z(np.int8, N),
        arrival=z(np.int64, N), need=z(np.int64, N), icu=z(bool, N), crit_since=z(np.int64, N),
        indicated=z(np.int64, N), allergies=z(bool, N, N_DRUGS), given=z(bool, N, N_DRUGS),
        step=z(np.int64), substep=z(np.int64), max_steps=z(np.int64), doctors=z(np.int64),
        icu_beds=z(np.int64), icu_available=z(np.int64), stock=z(np.int64, N_DRUGS),
        capacity=z(np.int64, 3), budget=z(np.int64, 3), ended=z(bool, 3),
        busy=z(np.int64, horizon), illegal=z(np.int64, 3), served_reward=z(np.float64),
        deaths=z(np.int64), lwbs=z(np.int64), missed_emergencies=z(np.int64),
    )  # fmt: skip


def load_rows(s: BatchState, rows: np.ndarray, scenarios: list[EdScenario]) -> None:
    """Rows ``rows`` := the first state of ``scenarios`` (one each), exactly as
    :func:`envs.ed.state.initial_state` builds it; slots past an episode's patients
    stay pending forever (they would arrive at step 0, which is never advanced into)."""
    cfg = s.config
    counts = [len(sc.patients) for sc in scenarios]
    if max(counts) > s.n_slots:
        raise ValueError(f"an episode has {max(counts)} patients but the batch {s.n_slots} slots")
    # Pads first, then the patients scattered over (row, slot) in one call per field.
    s.place[rows] = _PENDING
    for name in ("severity", "arrival_severity", "reported"):
        getattr(s, name)[rows] = N_CATEGORIES
    for name in ("condition", "triaged", "triage_condition", "arrival", "icu", "given",
                 "allergies", "step", "substep", "ended", "busy", "illegal", "served_reward",
                 "deaths", "lwbs", "missed_emergencies"):  # fmt: skip
        getattr(s, name)[rows] = 0
    s.countdown[rows] = NO_COUNTDOWN
    s.crit_since[rows] = s.indicated[rows] = -1
    s.need[rows] = 1
    r = np.repeat(rows, counts)
    slot = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
    v = np.array([(p.severity, p.reported_severity, p.deterioration_countdown, p.arrival_step,
                   p.doctors_needed, p.requires_icu)
                  for sc in scenarios for p in sc.patients], dtype=np.int64)  # fmt: skip
    sev, arrival = v[:, 0], v[:, 3]
    s.severity[r, slot] = s.arrival_severity[r, slot] = sev
    s.reported[r, slot] = v[:, 1]
    s.countdown[r, slot] = v[:, 2]
    s.arrival[r, slot] = arrival
    s.need[r, slot] = v[:, 4]
    s.icu[r, slot] = v[:, 5] != 0
    s.place[r, slot] = np.where(arrival == 0, _WAITING, _PENDING)
    s.crit_since[r, slot] = np.where(sev == 1, arrival, -1)
    s.indicated[r, slot] = np.concatenate([sc.indicated for sc in scenarios])
    s.allergies[r, slot] = np.concatenate([sc.allergies for sc in scenarios])
    tasks = [sc.task for sc in scenarios]
    s.max_steps[rows] = [t.max_steps for t in tasks]
    s.doctors[rows] = doctors = np.array([t.num_doctors for t in tasks])
    s.icu_beds[rows] = s.icu_available[rows] = [t.icu_beds for t in tasks]
    s.stock[rows] = cfg.stock
    s.capacity[rows, 0], s.capacity[rows, 1] = cfg.triage_capacity, cfg.dispense_capacity
    s.capacity[rows, 2] = doctors
    s.budget[rows] = s.capacity[rows]
    if s.busy.shape[1] < s.max_steps[rows].max() + max(cfg.treatment_steps or (1,)) + 1:
        raise ValueError("an episode's horizon exceeds the batch's (max_steps differs)")


# ---------------------------------------------------------------- legality
@dataclass
class Legal:
    """What each role may do now, per episode (:func:`envs.ed.state.masks` as arrays)."""

    nurse: np.ndarray  # (B, N) slots to (re-)triage
    pharmacist: np.ndarray  # (B, N, D) (slot, drug) pairs
    consultant: np.ndarray  # (B, N) slots to serve
    choice: np.ndarray  # (B, 3) the role has something besides END


def legal(s: BatchState) -> Legal:
    cfg = s.config
    waiting = s.place == _WAITING
    untriaged = s.triaged == 0
    nurse = untriaged | (s.condition != s.triage_condition) if cfg.retriage else untriaged
    nurse = nurse & waiting & (~s.ended[:, 0] & (s.budget[:, 0] > 0))[:, None]
    ok = waiting & ~untriaged & (~s.ended[:, 1] & (s.budget[:, 1] > 0))[:, None]
    pharm = ok[:, :, None] & (s.stock > 0)[:, None, :] & ~s.given
    cons = waiting & (s.need <= s.budget[:, 2:3]) & ~s.ended[:, 2:3]
    if cfg.serve_requires_triage:
        cons &= ~untriaged
    cons &= ~(s.icu & (s.icu_available < 1)[:, None])
    choice = np.stack([nurse.any(1), pharm.any((1, 2)), cons.any(1)], axis=1)
    return Legal(nurse, pharm, cons, choice)


def masks(lg: Legal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 action masks per role, END (always legal) last (:mod:`envs.ed.codec`)."""
    B, N = lg.nurse.shape
    out = []
    for per_slot in (
        np.broadcast_to(lg.nurse[:, :, None], (B, N, N_CATEGORIES)),
        lg.pharmacist,
        lg.consultant[:, :, None],
    ):
        m = np.empty((B, N * per_slot.shape[2] + 1), dtype=np.int8)
        m[:, :-1] = per_slot.reshape(B, -1)
        m[:, -1] = 1
        out.append(m)
    return out[0], out[1], out[2]


# ---------------------------------------------------------------- transitions
@dataclass
class BatchResult:
    """Per-episode reward totals of one sub-step, summed as the scalar env sums them."""

    shared: np.ndarray  # (B,) Σ shared terms (serve, waiting_immediate, death, lwbs)
    role: np.ndarray  # (B, 3) Σ each role's own terms
    illegal: np.ndarray  # (B, 3) bool
    advanced: np.ndarray  # (B,) bool
    legal: Legal  # of the state the sub-step leaves


def _deteriorate(s: BatchState, b: np.ndarray, sl: np.ndarray) -> None:
    sev = np.maximum(1, s.severity[b, sl] - 1)
    s.severity[b, sl] = sev
    s.reported[b, sl] = sev
    s.condition[b, sl] = np.where(sev == 1, _CRITICAL, _AT_RISK)
    newly = (sev == 1) & (s.crit_since[b, sl] < 0)
    s.crit_since[b[newly], sl[newly]] = s.step[b[newly]]


def substep(
    s: BatchState,
    actions: np.ndarray,
    lg0: Legal,
    m0: tuple[np.ndarray, np.ndarray, np.ndarray],
    rows: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray],
    live: np.ndarray,
) -> BatchResult:
    """One sub-step of the ``live`` episodes: ``actions`` (B, 3) int64 in Role order,
    judged on ``m0`` / ``lg0`` (the masks and legality the agents saw); ``rows`` =
    ``arange(B)``; ``tables`` = :func:`envs.reward.serve_reward_arrays` up to the
    horizon. Rows not live are left as they are (zero rewards)."""
    cfg, r = s.config, s.config.rewards
    B, N = s.batch, s.n_slots
    shared_serve = np.zeros(B)
    role_act = np.zeros((B, 3))
    illegal = np.zeros((B, 3), dtype=bool)
    for role, k in enumerate((N_CATEGORIES, N_DRUGS, 1)):
        a = actions[:, role]
        end = N * k
        ok = live & (a >= 0) & (a <= end)
        ok &= m0[role][rows, np.where(ok, a, end)] != 0
        if role == 1:  # a dose for a patient the nurse triaged in this very sub-step
            sl, d = np.divmod(np.clip(a, 0, end - 1), N_DRUGS)
            late = live & ~ok & (a >= 0) & (a < end) & ~s.ended[:, 1] & (s.budget[:, 1] > 0)
            late &= (s.place[rows, sl] == _WAITING) & (s.triaged[rows, sl] > 0)
            late &= (s.stock[rows, d] > 0) & ~s.given[rows, sl, d]
            ok |= late
        bad = live & ~ok
        if bad.any():
            illegal[:, role] = bad
            s.illegal[:, role] += bad
            s.budget[:, role] = np.where(
                bad, np.maximum(0, s.budget[:, role] - 1), s.budget[:, role]
            )
            role_act[bad, role] = r.illegal_action
        is_end = ok & (a == end)
        if is_end.any():
            closes = is_end & lg0.choice[:, role]
            if role and cfg.serve_requires_triage:
                closes &= ~lg0.choice[:, 0]  # END is a pass while the nurse can still triage
            s.ended[:, role] |= closes
        b = np.flatnonzero(ok & (a < end))
        if not b.size:
            continue
        act = a[b]
        if role == 0:
            sl, cat = np.divmod(act, N_CATEGORIES)
            cat += 1
            s.budget[b, 0] -= 1
            s.triaged[b, sl] = cat
            s.triage_condition[b, sl] = s.condition[b, sl]
            true = s.severity[b, sl]
            under = (true <= 2) & (cat >= true + UNDER_TRIAGE_LEVELS)
            role_act[b[under], 0] = r.under_triage
        elif role == 1:
            sl, d = np.divmod(act, N_DRUGS)
            s.budget[b, 1] -= 1
            s.given[b, sl, d] = True
            s.stock[b, d] -= 1
            indicated = s.indicated[b, sl] == d
            adverse = s.allergies[b, sl, d] | (_HIGH_ALERT[d] & ~indicated)
            prevent = ~adverse & indicated & (s.countdown[b, sl] > 0)
            role_act[b[adverse], 1] = r.adverse_event
            role_act[b[prevent], 1] = r.prevented_deterioration
            s.countdown[b[prevent], sl[prevent]] = NO_COUNTDOWN
            if adverse.any():
                _deteriorate(s, b[adverse], sl[adverse])
        else:
            sl = act
            need = s.need[b, sl]
            s.budget[b, 2] -= need
            s.icu_available[b] -= s.icu[b, sl]
            s.place[b, sl] = _SERVED
            sev = s.severity[b, sl]
            step = s.step[b]
            if cfg.treatment_steps is not None:
                dur = np.asarray(cfg.treatment_steps)[sev - 1]
                for k_ in range(1, int(dur.max())):
                    on = k_ < dur
                    s.busy[b[on], step[on] + k_] += need[on]
            w = step - s.arrival[b, sl]
            arrived_as = s.arrival_severity[b, sl]
            raw, rounded = tables
            wr = w
            if cfg.critical_clock:
                crit = (sev == 1) & (arrived_as > 1)
                wr = np.where(crit, step - s.crit_since[b, sl], w)
            own, own_r = raw[sev, wr], rounded[sev, wr]
            cap, cap_r = raw[arrived_as, w], rounded[arrived_as, w]
            capped = (sev != arrived_as) & (cap < own)  # min(own, cap), the first on ties
            shared_serve[b] = np.where(capped, cap, own)
            s.served_reward[b] += np.where(capped, cap_r, own_r)
    s.substep += live
    lg = legal(s)
    done = ~lg.choice | s.ended | (s.budget <= 0)
    adv = live & done.all(1)
    shared = shared_serve
    role_total = role_act
    if adv.any():
        shared, role_total = _advance(s, adv, shared_serve, role_act)
        lg = legal(s)
    return BatchResult(shared, role_total, illegal, adv, lg)


def _advance(
    s: BatchState, adv: np.ndarray, shared_serve: np.ndarray, role_act: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """End the time step of the ``adv`` episodes (:func:`envs.ed.engine.advance`);
    returns (shared total, role totals) of the sub-step, summed in the scalar order."""
    cfg, r = s.config, s.config.rewards
    waiting = (s.place == _WAITING) & adv[:, None]
    bn, bc = s.budget[:, 0], s.budget[:, 2]
    ok = waiting & (s.need <= bc[:, None])
    if cfg.serve_requires_triage:
        ok &= s.triaged > 0
    ok &= ~(s.icu & (s.icu_available < 1)[:, None])
    servable = ok.sum(1)
    idle_doctors = np.where(
        (bc > 0) & (servable > 0), r.idle_doctor * np.minimum(bc, servable), 0.0
    )
    untriaged = (waiting & (s.triaged == 0)).sum(1)
    idle_triage = np.where(
        (bn > 0) & (untriaged > 0), r.idle_triage * np.minimum(bn, untriaged), 0.0
    )
    immediate = (waiting & (s.severity == 1)).sum(1)
    s.missed_emergencies += immediate
    wait_term = np.where(immediate > 0, r.waiting_immediate * immediate, 0.0)
    s.step += adv
    tick = waiting & (s.countdown > 0)
    s.countdown -= tick
    det = tick & (s.countdown == 0)
    if det.any():
        s.countdown[det] = NO_COUNTDOWN
        _deteriorate(s, *np.nonzero(det))
    death_term = lwbs_term = 0.0
    if cfg.death_wait or cfg.lwbs_patience is not None:
        step = s.step[:, None]
        died = np.zeros_like(waiting)
        if cfg.death_wait:
            died = waiting & (s.severity == 1) & (step - s.crit_since >= cfg.death_wait)
        left = np.zeros_like(waiting)
        if cfg.lwbs_patience is not None:
            patience = np.asarray(cfg.lwbs_patience, dtype=np.int64)[s.severity - 1]
            left = waiting & ~died & (patience > 0) & (step - s.arrival >= patience)
        k_died, k_left = died.sum(1), left.sum(1)
        s.place[died] = _DIED
        s.place[left] = _LWBS
        s.deaths += k_died
        s.lwbs += k_left
        death_term = np.where(k_died > 0, r.death * k_died, 0.0)
        lwbs_term = np.where(k_left > 0, r.lwbs * k_left, 0.0)
    s.place[adv[:, None] & (s.arrival == s.step[:, None]) & (s.place == _PENDING)] = _WAITING
    b = np.flatnonzero(adv)
    s.budget[b] = s.capacity[b]
    if cfg.treatment_steps is not None:
        s.budget[b, 2] -= s.busy[b, s.step[b]]
    s.ended[b] = False
    over = adv & s.done
    if over.any():
        s.place[(s.place == _WAITING) & over[:, None]] = _LEFT
    shared = ((shared_serve + wait_term) + death_term) + lwbs_term
    role = role_act.copy()
    role[:, 0] += idle_triage
    role[:, 2] += idle_doctors
    return shared, role

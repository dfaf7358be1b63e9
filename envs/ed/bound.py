"""Clairvoyant bound of an ``ed`` episode: the exact maximum Σ serve reward, as an
integer program (:func:`scipy.optimize.milp`), verified by replaying it in the engine.

The oracle knows every true severity, presentation and future arrival, and plays a
perfect nurse (true categories) and pharmacist (indicated drug, never an adverse
event). Variables and constraints:

* ``x[p, t]``: serve p at step t (arrival ≤ t < horizon, reward > 0); for a patient
  with a deterioration countdown that the indicated drug can stop, steps t at or
  after its deterioration step D = arrival + countdown split into ``x⁺`` (prevented:
  the reward of the arrival severity) and ``x⁻`` (deteriorated, capped reward);
* v1: a column exists only while the patient is still waiting on its own trajectory
  (no death, no LWBS: :func:`_serve_columns`), and a serve at t holds its doctors
  for the steps t … t + duration(true category) − 1;
* doctor slots per step: Σ doctors_needed·x ≤ doctors (over the treatments running);
  ICU: Σ icu·x ≤ beds (for good); each patient served at most once;
* v1 ``serve_requires_triage``: Σ_{t' ≤ t} x[p, t'] ≤ Σ_{t' ≤ t} y[p, t'];
* ``y[p, t]`` triage, ``d[p, t]`` dose (t < D): Σ_p y ≤ triage_capacity and Σ_p d ≤
  dispense_capacity per step; stock per drug; a dose needs a triage at or before its
  step; Σ_{t≥D} x⁺ ≤ Σ_t d (prevention needs a dose in time);
* maximise Σ round(r, 4)·x (rewards as the graders sum them).

A reward depends only on when its own patient is served and whether it was dosed
in time, so the program is exact. :func:`solve` replays the plan through
:func:`envs.ed.engine.substep` and checks that the value equals the objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from envs.ed import codec
from envs.ed.config import N_DRUGS, EdConfig, Role
from envs.ed.engine import EdState, ed_serve_reward, end_action, initial_state, substep
from envs.ed.scenario import EdScenario, build_ed_scenario
from envs.reward import REWARD_DECIMALS
from envs.types import TaskSpec

ILP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class EdPlan:
    """Per step: patients to triage (slot, category), to dose (slot, drug), to serve."""

    triage: tuple[tuple[tuple[int, int], ...], ...]
    dose: tuple[tuple[tuple[int, int], ...], ...]
    serve: tuple[tuple[int, ...], ...]
    objective: float


@dataclass(frozen=True)
class EdBound:
    value: float  # Σ served rewards (4-place rounded) of the replay = the ILP objective
    plan: EdPlan
    grader: dict
    prevented: int

    @property
    def score(self) -> float:
        return self.grader["score"]


def _reward(sev: int, arr_sev: int, w: int, crit_wait: int | None = None) -> float:
    return round(ed_serve_reward(sev, arr_sev, w, crit_wait), REWARD_DECIMALS)


def _preventable(sc: EdScenario, config: EdConfig, p) -> bool:
    d = sc.indicated[p.slot]
    return (
        p.deterioration_countdown > 0
        and d >= 0
        and not sc.allergies[p.slot, d]
        and config.stock[d] > 0
    )


def _serve_columns(p, sc: EdScenario, config: EdConfig, horizon: int, prevented: bool):
    """(step, true category, critical wait) along patient ``p``'s own trajectory while
    it is still waiting if nobody serves it: deterioration at D unless ``prevented``,
    then the v1 departures (death, LWBS) of :func:`envs.ed.engine.departures`; the
    critical wait (steps since it became category 1, with ``critical_clock``) is None
    otherwise. Stops at the first departure."""
    a, s, c = p.arrival_step, p.severity, p.deterioration_countdown
    det = a + c if c > 0 else horizon + 1
    crit = a if s == 1 else -1
    for t in range(a, horizon):
        sev = s if (t < det or prevented) else max(1, s - 1)
        if sev == 1 and crit < 0:
            crit = t
        if t > a:
            if config.death_wait and sev == 1 and t - crit >= config.death_wait:
                return
            pat = config.patience(sev)
            if pat and t - a >= pat:
                return
        yield t, sev, (t - crit if config.critical_clock and sev == 1 and s > 1 else None)


def plan(sc: EdScenario, config: EdConfig) -> EdPlan:
    task = sc.task
    horizon = task.max_steps
    cols: list[tuple] = []  # (kind, slot, t, duration): kind x | xd | xp | y | d
    coef: list[float] = []
    for p in sc.patients:
        if p.doctors_needed > task.num_doctors or (p.requires_icu and task.icu_beds < 1):
            continue
        a, s, c = p.arrival_step, p.severity, p.deterioration_countdown
        det = a + c if c > 0 else horizon + 1
        prev = _preventable(sc, config, p)
        alive = set()
        for t, sev, cw in _serve_columns(p, sc, config, horizon, False):
            alive.add(t)
            r = _reward(sev, s, t - a, cw)
            if r > 0:
                cols.append(("x" if t < det else "xd", p.slot, t, config.duration(sev)))
                coef.append(r)
        if prev:
            for t, sev, cw in _serve_columns(p, sc, config, horizon, True):
                alive.add(t)
                r = _reward(sev, s, t - a, cw)
                if t >= det and r > 0:
                    cols.append(("xp", p.slot, t, config.duration(sev)))
                    coef.append(r)
        # Triage variables: for a dose (before D), and with serve_requires_triage for
        # every serve; doses only for a preventable patient, before D.
        tri_steps = sorted(alive) if config.serve_requires_triage else (
            [t for t in sorted(alive) if t < det] if prev else [])  # fmt: skip
        for t in tri_steps:
            cols.append(("y", p.slot, t, 0))
            coef.append(0.0)
            if prev and t < det:
                cols.append(("d", p.slot, t, 0))
                coef.append(0.0)
    if not cols:
        return EdPlan(((),) * horizon, ((),) * horizon, ((),) * horizon, 0.0)
    nv = len(cols)
    r_idx: list[int] = []
    c_idx: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(entries: dict[int, float], low: float, high: float) -> None:
        row = len(lo)
        for i, v in entries.items():
            r_idx.append(row)
            c_idx.append(i)
            vals.append(v)
        lo.append(low)
        hi.append(high)

    pats = sc.patients
    serve_kinds = ("x", "xd", "xp")
    doctors: dict[int, dict[int, float]] = {t: {} for t in range(horizon)}
    triage: dict[int, dict[int, float]] = {}
    dispense: dict[int, dict[int, float]] = {}
    own: dict[int, list[int]] = {}
    for i, (kind, slot, t, dur) in enumerate(cols):
        own.setdefault(slot, []).append(i)
        if kind in serve_kinds:
            for u in range(t, min(horizon, t + dur)):  # a treatment holds its doctors
                doctors[u][i] = pats[slot].doctors_needed
        elif kind == "y":
            triage.setdefault(t, {})[i] = 1.0
        else:
            dispense.setdefault(t, {})[i] = 1.0
    for t in range(horizon):
        if doctors[t]:
            add(doctors[t], 0, task.num_doctors)
        if t in triage:
            add(triage[t], 0, config.triage_capacity)
        if t in dispense:
            add(dispense[t], 0, config.dispense_capacity)
    icu = {i: 1.0 for i, c in enumerate(cols) if c[0] in serve_kinds and pats[c[1]].requires_icu}
    if icu:
        add(icu, 0, task.icu_beds)
    for p in pats:
        mine = own.get(p.slot, [])
        add({i: 1.0 for i in mine if cols[i][0] in serve_kinds}, 0, 1)
        ys = {i: 1.0 for i in mine if cols[i][0] == "y"}
        if not ys:
            continue
        add(ys, 0, 1)
        if config.serve_requires_triage:  # Σ_{t' ≤ t} x[p, t'] ≤ Σ_{t' ≤ t} y[p, t']
            serves = [i for i in mine if cols[i][0] in serve_kinds]
            for t in sorted({cols[i][2] for i in serves}):
                add({i: 1.0 for i in serves if cols[i][2] <= t}
                    | {j: -1.0 for j in ys if cols[j][2] <= t}, -np.inf, 0)  # fmt: skip
        doses = [i for i in mine if cols[i][0] == "d"]
        if doses:
            add(dict.fromkeys(doses, 1.0), 0, 1)
        for i in doses:  # d[p, t] ≤ Σ_{t' ≤ t} y[p, t']
            t = cols[i][2]
            add({i: 1.0} | {j: -1.0 for j in ys if cols[j][2] <= t}, -np.inf, 0)
        prevented = {i: 1.0 for i in mine if cols[i][0] == "xp"}
        if prevented:
            add(prevented | dict.fromkeys(doses, -1.0), -np.inf, 0)
    for drug in range(N_DRUGS):
        ds = {i: 1.0 for i, c in enumerate(cols) if c[0] == "d" and sc.indicated[c[1]] == drug}
        if ds:
            add(ds, 0, config.stock[drug])
    a_mat = coo_array((vals, (r_idx, c_idx)), shape=(len(lo), nv)).tocsr()
    res = milp(
        c=-np.asarray(coef),
        constraints=[LinearConstraint(a_mat, lo, hi)],
        integrality=np.ones(nv),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0},  # exact optimum, not HiGHS's default 1e-4 gap
    )
    if not res.success:
        raise RuntimeError(f"ed oracle ILP failed: {res.message}")
    chosen = [cols[i] for i in np.flatnonzero(res.x > 0.5)]
    serve: list[list[int]] = [[] for _ in range(horizon)]
    dose: list[list[tuple[int, int]]] = [[] for _ in range(horizon)]
    triage_plan: list[list[tuple[int, int]]] = [[] for _ in range(horizon)]
    # Dose variables have no reward of their own: keep only the doses that the plan's
    # prevented serves (x⁺) rely on, so the players never dose a patient already gone.
    dosed = {c[1] for c in chosen if c[0] == "xp"}
    # With serve_requires_triage the served patients' triage steps are part of the plan.
    triaged = dosed | ({c[1] for c in chosen if c[0] in serve_kinds}
                       if config.serve_requires_triage else set())  # fmt: skip
    for kind, slot, t, _ in chosen:
        if kind in serve_kinds:
            serve[t].append(slot)
        elif kind == "d" and slot in dosed:
            dose[t].append((slot, int(sc.indicated[slot])))
        elif kind == "y" and slot in triaged:
            triage_plan[t].append((slot, pats[slot].severity))
    return EdPlan(
        tuple(map(tuple, triage_plan)), tuple(map(tuple, dose)), tuple(map(tuple, serve)),
        float(-res.fun),
    )  # fmt: skip


class PlanPlayer:
    """Plays an :class:`EdPlan` as the three roles of one sub-step at a time: the nurse
    triages the planned patients (then anyone else, with the true category), the
    pharmacist gives the planned doses, the consultant serves the planned patients."""

    def __init__(self, plan: EdPlan) -> None:
        self.plan = plan

    def actions(self, s: EdState) -> tuple[int, int, int]:
        t, ns = s.step, s.n_slots
        nurse = end_action(Role.NURSE, ns)
        if not s.ended[Role.NURSE] and s.budget[Role.NURSE] > 0:
            # This step's dose targets first, in dose order, so that the k-th dose is
            # given in the sub-step that triages its patient (or later).
            first = [slot for slot, _ in self.plan.dose[t]]
            first += [slot for slot, _ in self.plan.triage[t]]
            first += [int(x) for x in s.waiting()]
            todo = [x for x in dict.fromkeys(first) if s.triaged[x] == 0 and s.place[x] == 1]
            if todo:
                slot = todo[0]
                nurse = codec.nurse_action(slot, int(s.severity[slot]))
        pharm = end_action(Role.PHARMACIST, ns)
        if s.budget[Role.PHARMACIST] > 0 and not s.ended[Role.PHARMACIST]:
            for slot, d in self.plan.dose[t]:
                # Triaged already, or by this sub-step's nurse action (she acts first).
                ready = s.triaged[slot] or codec.action_slot(Role.NURSE, nurse) == slot
                if not s.given[slot, d] and ready:
                    pharm = codec.pharmacist_action(slot, d)
                    break
        cons = end_action(Role.CONSULTANT, ns)
        gated = s.config.serve_requires_triage
        for slot in self.plan.serve[t]:
            if s.place[slot] == 1 and (s.triaged[slot] or not gated):  # waiting, servable
                cons = slot
                break
        return nurse, pharm, cons


def replay(sc: EdScenario, config: EdConfig, p: EdPlan, n_slots: int | None = None) -> EdState:
    s = initial_state(sc, config, n_slots)
    player = PlanPlayer(p)
    while not s.done:
        substep(s, player.actions(s))
    return s


@lru_cache(maxsize=4096)
def _solve_cached(task: TaskSpec, seed: int | None, config: EdConfig) -> EdBound:
    from envs.ed.graders import grade  # graders import nothing from here; avoid a cycle

    sc = build_ed_scenario(task, seed, config)
    p = plan(sc, config)
    s = replay(sc, config, p)
    value = sum(r.reward for r in s.served)
    if abs(value - p.objective) > ILP_TOLERANCE:
        raise AssertionError(f"ed oracle replay value {value} != ILP objective {p.objective}")
    return EdBound(value=value, plan=p, grader=grade(s, value), prevented=s.prevented)


def solve(task: TaskSpec, seed: int | None, config: EdConfig | None = None) -> EdBound:
    """The clairvoyant bound of the ``ed`` episode (task, seed, config); cached."""
    return _solve_cached(task, seed, config or EdConfig())

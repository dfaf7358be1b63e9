"""The state of an ``ed`` episode and its legality: :class:`EdState`,
:func:`initial_state`, what each role may do now (:func:`nurse_slots`,
:func:`pharmacist_pairs`, :func:`consultant_slots`) and the action :func:`masks`
(actions encoded by :mod:`envs.ed.codec`). The transitions are in
:mod:`envs.ed.engine`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.classic.dynamics import ServedRecord
from envs.ed import codec
from envs.ed.config import N_DRUGS, EdConfig, Place, Role
from envs.ed.scenario import EdScenario

_ROLES = tuple(Role)
_NURSE, _PHARMACIST, _CONSULTANT = _ROLES  # plain names: enum class lookups are slow
_WAITING = int(Place.WAITING)


def action_sizes(n_slots: int) -> dict[Role, int]:
    """Discrete action sizes (the last action is END)."""
    return {role: codec.action_size(role, n_slots) for role in _ROLES}


@dataclass
class EdState:
    """Mutable state of one ``ed`` episode; per-patient arrays are indexed by slot."""

    scenario: EdScenario
    config: EdConfig
    n_slots: int
    step: int
    place: np.ndarray  # Place codes
    severity: np.ndarray  # current true severity
    arrival_severity: np.ndarray
    reported: np.ndarray  # self-reported urgency (the truth once deteriorated)
    countdown: np.ndarray
    condition: np.ndarray
    triaged: np.ndarray  # nurse's category, 0 = untriaged
    triage_condition: np.ndarray  # condition when last triaged
    triage_true: np.ndarray  # true severity when last triaged (KPIs)
    given: np.ndarray  # (n, N_DRUGS) bool
    stock: np.ndarray  # (N_DRUGS,)
    icu_available: int
    budget: list[int]
    ended: list[bool]
    arrival: np.ndarray
    need: np.ndarray  # doctor slots per patient
    icu: np.ndarray
    arrivals_at: dict[int, tuple[int, ...]]
    substep: int = 0
    missed_emergencies: int = 0
    adverse_events: int = 0
    prevented: int = 0
    deteriorations: int = 0
    under_triage_events: int = 0
    triage_actions: int = 0
    doses: int = 0
    illegal: list[int] = field(default_factory=lambda: [0, 0, 0])
    served: list[ServedRecord] = field(default_factory=list)
    busy: np.ndarray | None = None  # v1: doctor slots committed per step (by treatments)
    crit_since: np.ndarray | None = None  # v1: step a patient became true category 1
    lwbs: int = 0
    deaths: int = 0
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Episode-constant derived data (e.g. the static observation columns); never
    dynamics: safe to clear at any time."""

    @property
    def n(self) -> int:
        return len(self.place)

    @property
    def max_steps(self) -> int:
        return self.scenario.task.max_steps

    @property
    def doctors(self) -> int:
        return self.scenario.task.num_doctors

    @property
    def done(self) -> bool:
        return self.step >= self.max_steps

    def waiting(self) -> np.ndarray:
        return np.flatnonzero(self.place == _WAITING)


def initial_state(scenario: EdScenario, config: EdConfig, n_slots: int | None = None) -> EdState:
    pats = scenario.patients
    n = len(pats)
    n_slots = n if n_slots is None else n_slots
    if n > n_slots:
        raise ValueError(f"scenario has {n} patients but only {n_slots} slots")
    arrivals_at: dict[int, list[int]] = {}
    for p in pats:
        arrivals_at.setdefault(p.arrival_step, []).append(p.slot)
    sev = np.array([p.severity for p in pats], dtype=np.int64)
    task = scenario.task
    state = EdState(
        scenario=scenario,
        config=config,
        n_slots=n_slots,
        step=0,
        place=np.full(n, Place.PENDING, dtype=np.int8),
        severity=sev,
        arrival_severity=sev.copy(),
        reported=np.array([p.reported_severity for p in pats], dtype=np.int64),
        countdown=np.array([p.deterioration_countdown for p in pats], dtype=np.int64),
        condition=np.zeros(n, dtype=np.int8),
        triaged=np.zeros(n, dtype=np.int8),
        triage_condition=np.zeros(n, dtype=np.int8),
        triage_true=np.zeros(n, dtype=np.int8),
        given=np.zeros((n, N_DRUGS), dtype=bool),
        stock=np.array(config.stock, dtype=np.int64),
        icu_available=task.icu_beds,
        budget=[config.capacity(r, task.num_doctors) for r in Role],
        ended=[False, False, False],
        arrival=np.array([p.arrival_step for p in pats], dtype=np.int64),
        need=np.array([p.doctors_needed for p in pats], dtype=np.int64),
        icu=np.array([p.requires_icu for p in pats], dtype=bool),
        arrivals_at={k: tuple(v) for k, v in arrivals_at.items()},
    )
    if config.treatment_steps is not None:
        state.busy = np.zeros(task.max_steps + max(config.treatment_steps) + 1, dtype=np.int64)
    state.crit_since = np.where(sev == 1, state.arrival, -1)
    state.place[list(state.arrivals_at.get(0, ()))] = _WAITING
    return state


# ---------------------------------------------------------------- legality and masks
def nurse_slots(s: EdState) -> np.ndarray:
    """Slots the nurse may (re-)triage now (bool, length n)."""
    if s.ended[_NURSE] or s.budget[_NURSE] <= 0:
        return np.zeros(s.n, dtype=bool)
    ok = s.triaged == 0
    if s.config.retriage:
        ok = ok | (s.condition != s.triage_condition)
    return ok & (s.place == _WAITING)


def pharmacist_pairs(s: EdState) -> np.ndarray:
    """(slot, drug) pairs the pharmacist may give now (bool, n × N_DRUGS)."""
    if s.ended[_PHARMACIST] or s.budget[_PHARMACIST] <= 0:
        return np.zeros((s.n, N_DRUGS), dtype=bool)
    ok = (s.place == _WAITING) & (s.triaged > 0)
    return ok[:, None] & (s.stock > 0)[None, :] & ~s.given


def consultant_slots(s: EdState) -> np.ndarray:
    """Slots the consultant may serve now (bool, length n)."""
    if s.ended[_CONSULTANT]:
        return np.zeros(s.n, dtype=bool)
    ok = (s.place == _WAITING) & (s.need <= s.budget[_CONSULTANT])
    if s.config.serve_requires_triage:
        ok &= s.triaged > 0
    if s.icu_available < 1:
        ok &= ~s.icu
    return ok


def masks(s: EdState) -> dict[Role, np.ndarray]:
    """int8 action masks per role (END, the last entry, is always legal)."""
    n, ns = s.n, s.n_slots
    out = {}
    m = np.zeros(codec.action_size(_NURSE, ns), dtype=np.int8)
    if not s.ended[_NURSE] and s.budget[_NURSE] > 0:
        codec.by_slot(_NURSE, m, n)[:] = nurse_slots(s)[:, None]
    m[-1] = 1
    out[_NURSE] = m
    m = np.zeros(codec.action_size(_PHARMACIST, ns), dtype=np.int8)
    if not s.ended[_PHARMACIST] and s.budget[_PHARMACIST] > 0:
        codec.by_slot(_PHARMACIST, m, n)[:] = pharmacist_pairs(s)
    m[-1] = 1
    out[_PHARMACIST] = m
    m = np.zeros(codec.action_size(_CONSULTANT, ns), dtype=np.int8)
    if not s.ended[_CONSULTANT]:
        m[:n] = consultant_slots(s)
    m[-1] = 1
    out[_CONSULTANT] = m
    return out


end_action = codec.end_action

"""Numeric observation encoding of the queue (no true severity anywhere).

Layout of ``observation`` (float32, shape ``(N * F + G,)``, N = patient slots):

* ``N`` rows of ``F = 8`` patient features, slot = arrival order; a row is all zeros
  when the slot is empty (not arrived yet, or served):

  ====  ====================  ==========================================================
  col   name                  value
  ====  ====================  ==========================================================
  0     present               1 if the patient is waiting now
  1     reported_severity     1..5 (what the patient reports; the truth once deteriorated)
  2     wait                  steps waited so far
  3     condition             0 stable, 1 at_risk, 2 critical
  4     countdown             visible steps until deterioration; 0 = none pending
  5     requires_icu          0/1
  6     requires_specialist   0/1
  7     can_serve             1 if resources allow serving now
  ====  ====================  ==========================================================

* then ``G = 7`` context features: step, steps_remaining, doctors_available,
  icu_available, icu_total, queue_length, patients_served.

``action_mask`` (int8, ``N + 1``): 1 for slots that can be served now; the last entry
(wait) is always 1.

:func:`encode` builds both from a :class:`~envs.classic.dynamics.ClassicState` (the reference);
:class:`EpisodeEncoder` builds the same arrays from per-episode tables in a few
vectorised operations (the hot path); tests check they agree on every step.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from envs.classic.dynamics import ClassicState, can_serve
from envs.types import Condition, Scenario, TaskSpec

PATIENT_FEATURES = (
    "present",
    "reported_severity",
    "wait",
    "condition",
    "countdown",
    "requires_icu",
    "requires_specialist",
    "can_serve",
)
CONTEXT_FEATURES = (
    "step",
    "steps_remaining",
    "doctors_available",
    "icu_available",
    "icu_total",
    "queue_length",
    "patients_served",
)
F = len(PATIENT_FEATURES)
G = len(CONTEXT_FEATURES)
PRESENT, REPORTED, WAIT, CONDITION, COUNTDOWN, ICU, SPECIALIST, CAN_SERVE = range(F)
STEP, STEPS_REMAINING, DOCTORS, ICU_AVAILABLE, ICU_TOTAL, QUEUE_LENGTH, SERVED = range(G)
OBS_DTYPE = np.float32
MASK_DTYPE = np.int8


def obs_size(n_slots: int) -> int:
    return n_slots * F + G


def feature_highs(task: TaskSpec, n_slots: int) -> np.ndarray:
    """Upper bounds of every observation entry (all lower bounds are 0)."""
    max_countdown = max((a.deterioration_countdown for a in task.arrivals), default=0)
    row = [1, 5, task.max_steps, int(Condition.CRITICAL), max(0, max_countdown), 1, 1, 1]
    ctx = [
        task.max_steps,
        task.max_steps,
        task.num_doctors,
        task.icu_beds,
        task.icu_beds,
        n_slots,
        n_slots,
    ]
    # A bound of 0 (no ICU in the task, no countdowns) is widened to 1 so that no Box
    # entry has low == high, which Gymnasium's checker warns about.
    return np.maximum(np.array(row * n_slots + ctx, dtype=OBS_DTYPE), 1)


def patients(observation: np.ndarray, n_slots: int) -> np.ndarray:
    """View of the ``(N, F)`` patient block of a flat observation."""
    return observation[: n_slots * F].reshape(n_slots, F)


def context(observation: np.ndarray, n_slots: int) -> np.ndarray:
    return observation[n_slots * F :]


def encode(state: ClassicState, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference encoder: observation and action mask of ``state``."""
    obs = np.zeros(obs_size(n_slots), dtype=OBS_DTYPE)
    mask = np.zeros(n_slots + 1, dtype=MASK_DTYPE)
    rows = patients(obs, n_slots)
    pats = state.scenario.patients
    for s in state.queue:
        p = pats[s]
        ok = can_serve(state, s)
        rows[s] = (
            1,
            state.reported[s],
            state.wait[s],
            int(state.condition[s]),
            max(0, state.countdown[s]),
            p.requires_icu,
            p.requires_specialist,
            ok,
        )
        mask[s] = ok
    mask[n_slots] = 1
    task = state.scenario.task
    context(obs, n_slots)[:] = (
        state.step,
        task.max_steps - state.step,
        state.doctors_available,
        state.icu_available,
        task.icu_beds,
        len(state.queue),
        len(state.served),
    )
    return obs, mask


class EpisodeEncoder:
    """Fast encoder for one episode: every step's rows precomputed as if nobody were
    served; at each step served slots are zeroed and ICU patients masked once the
    beds are gone.

    A waiting patient's visible features depend only on the step (arrival, wait ticks,
    the deterioration countdown), which is what makes the table exact. Wait ticks:
    a patient arriving at step ``a > 0`` has waited ``t - a + 1`` steps at step ``t``
    (Queue Doctor ticks arrivals in their first step), one at step 0 has waited ``t``.
    The countdown drops by one per tick and deterioration happens when it reaches 0.
    """

    def __init__(self, scenario: Scenario, n_slots: int) -> None:
        task = scenario.task
        pats = scenario.patients
        if len(pats) > n_slots:
            raise ValueError(f"scenario has {len(pats)} patients but only {n_slots} slots")
        self.n_slots = n_slots
        self.max_steps = task.max_steps
        self.num_doctors = task.num_doctors
        self.icu_total = task.icu_beds
        # Many seeds draw the same schedule (few arrivals move): tables are shared.
        draws = tuple(
            (p.arrival_step, p.deterioration_countdown, p.severity, p.reported_severity,
             p.requires_icu, p.requires_specialist)
            for p in pats
        )  # fmt: skip
        shape = (task.max_steps, task.num_doctors, task.icu_beds, n_slots)
        self._rows, self._mask, self._icu = _episode_tables(shape, draws)
        self._keep = np.ones(n_slots * F + G, dtype=OBS_DTYPE)
        self._keep_mask = np.ones(n_slots + 1, dtype=MASK_DTYPE)
        base = n_slots * F
        self._icu_available = base + ICU_AVAILABLE
        self._queue_length = base + QUEUE_LENGTH
        self._served = base + SERVED

    def mark_served(self, slot: int) -> None:
        self._keep[slot * F : (slot + 1) * F] = 0.0
        self._keep_mask[slot] = 0

    def encode(
        self, step: int, icu_available: int, queue_length: int, served: int
    ) -> tuple[np.ndarray, np.ndarray]:
        obs = self._rows[step] * self._keep
        mask = self._mask[step] * self._keep_mask
        if icu_available < 1 and self.icu_total:
            n = self.n_slots
            obs[CAN_SERVE : n * F : F][self._icu] = 0.0
            mask[:n][self._icu] = 0
        obs[self._icu_available] = icu_available
        obs[self._queue_length] = queue_length
        obs[self._served] = served
        return obs, mask


TABLE_CACHE_SIZE = 512
"""Episode tables kept (about 22 kB each for mass_casualty)."""


@lru_cache(maxsize=TABLE_CACHE_SIZE)
def _episode_tables(
    shape: tuple[int, int, int, int], draws: tuple[tuple[int, int, int, int, bool, bool], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only per-step observations (context entries that depend only on the step
    filled in), masks and ICU flags of one drawn schedule (see EpisodeEncoder)."""
    max_steps, num_doctors, icu_beds, n_slots = shape
    n = len(draws)
    cols = np.array(draws, dtype=np.int64).reshape(n, 6).T
    a, c, sev, rep = cols[0], cols[1], cols[2], cols[3]
    icu, spec = cols[4].astype(bool), cols[5].astype(bool)
    t = np.arange(max_steps + 1)[:, None]
    arrived = a[None, :] <= t
    ticks = np.where(arrived, t - a[None, :] + (a[None, :] > 0), 0)
    det = (c[None, :] > 0) & (ticks >= c[None, :])
    worse = np.maximum(1, sev - 1)[None, :]
    can = (num_doctors >= np.where(spec, 2, 1)) & (~icu | (icu_beds >= 1))
    table = np.zeros((max_steps + 1, n_slots, F), dtype=OBS_DTYPE)
    tab = table[:, :n]
    tab[..., PRESENT] = arrived
    tab[..., REPORTED] = np.where(det, worse, rep[None, :])
    tab[..., WAIT] = ticks
    tab[..., CONDITION] = np.where(
        det, np.where(worse == 1, int(Condition.CRITICAL), int(Condition.AT_RISK)), 0
    )
    tab[..., COUNTDOWN] = np.where((c[None, :] > 0) & ~det, c[None, :] - ticks, 0)
    tab[..., ICU] = icu
    tab[..., SPECIALIST] = spec
    tab[..., CAN_SERVE] = can
    table *= table[..., PRESENT : PRESENT + 1]
    # Whole observations per step: the patient rows, then the context entries that
    # depend only on the step; encode() multiplies by the served-slot mask and
    # writes the three that depend on play (two NumPy calls per step).
    full = np.zeros((max_steps + 1, n_slots * F + G), dtype=OBS_DTYPE)
    full[:, : n_slots * F] = table.reshape(max_steps + 1, n_slots * F)
    ctx = full[:, n_slots * F :]
    ctx[:, STEP] = t[:, 0]
    ctx[:, STEPS_REMAINING] = max_steps - t[:, 0]
    ctx[:, DOCTORS] = num_doctors
    ctx[:, ICU_TOTAL] = icu_beds
    mask = np.zeros((max_steps + 1, n_slots + 1), dtype=MASK_DTYPE)
    mask[:, :n] = arrived & can
    mask[:, n_slots] = 1
    icu_slots = np.zeros(n_slots, dtype=bool)
    icu_slots[:n] = icu
    for arr in (full, mask, icu_slots):
        arr.flags.writeable = False  # shared between episodes
    return full, mask, icu_slots

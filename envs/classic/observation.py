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

import numpy as np

from envs.classic.dynamics import ClassicState, can_serve
from envs.types import Condition, EpisodePatient, Scenario, TaskSpec

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
    served; a serve zeroes that slot's rows and mask entries in the episode's own
    tables, and ICU patients are masked once the beds are gone (classic never frees
    a bed), so a step's observation is one row copied plus three context entries.

    A waiting patient's visible features depend only on the step (arrival, wait ticks,
    the deterioration countdown), which is what makes the table exact. Wait ticks:
    a patient arriving at step ``a > 0`` has waited ``t - a + 1`` steps at step ``t``
    (Queue Doctor ticks arrivals in their first step), one at step 0 has waited ``t``.
    The countdown drops by one per tick and deterioration happens when it reaches 0.
    """

    def __init__(
        self,
        scenario: Scenario,
        n_slots: int,
        tables: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """``tables``: :func:`episode_tables` of this scenario, if already built."""
        task = scenario.task
        self.n_slots = n_slots
        self.max_steps = task.max_steps
        self.num_doctors = task.num_doctors
        self.icu_total = task.icu_beds
        base = n_slots * F
        self._icu_available = base + ICU_AVAILABLE
        self._queue_length = base + QUEUE_LENGTH
        self._served = base + SERVED
        self.start(scenario, tables)

    def start(
        self, scenario: Scenario, tables: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        """Encode a new episode of the same task (an env reuses its encoder across
        resets); ``tables`` as for the constructor."""
        task = scenario.task
        pats = scenario.patients
        n_slots = self.n_slots
        if len(pats) > n_slots:
            raise ValueError(f"scenario has {len(pats)} patients but only {n_slots} slots")
        if (task.max_steps, task.num_doctors, task.icu_beds) != (
            self.max_steps,
            self.num_doctors,
            self.icu_total,
        ):
            raise ValueError(
                f"scenario of task {task.name!r} has another shape than this encoder's"
            )
        if tables is None:
            shape = (task.max_steps, task.num_doctors, task.icu_beds, n_slots)
            self._rows, self._mask = _episode_tables(shape, pats)
        else:  # this episode's own copies: serves are written into them
            self._rows, self._mask = tables[0].copy(), tables[1].copy()
        self._icu_slots = [p.slot for p in pats if p.requires_icu] if self.icu_total else []
        self._icu_masked = False

    def mark_served(self, slot: int) -> None:
        # Past steps are never read again, so the whole column range can go (fill: a
        # little cheaper than assigning a scalar to the slice).
        self._rows[:, slot * F : (slot + 1) * F].fill(0.0)
        self._mask[:, slot].fill(0)

    def encode(
        self, step: int, icu_available: int, queue_length: int, served: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if icu_available < 1 and self.icu_total and not self._icu_masked:
            self._mask_icu()
        obs = self._rows[step].copy()  # fresh arrays: callers may keep or edit them
        obs[self._icu_available] = icu_available
        obs[self._queue_length] = queue_length
        obs[self._served] = served
        return obs, self._mask[step].copy()

    def observe(self, state: ClassicState) -> dict[str, np.ndarray]:
        """``{"observation", "action_mask"}`` of ``state`` (this encoder's episode):
        :meth:`encode` of its step, free ICU beds, queue length and served count, in
        one call (the env's hot path)."""
        icu = state.icu_available
        if icu < 1 and self.icu_total and not self._icu_masked:
            self._mask_icu()
        step = state.step
        obs = self._rows[step].copy()  # fresh arrays: callers may keep or edit them
        obs[self._icu_available] = icu
        obs[self._queue_length] = len(state.queue)
        obs[self._served] = len(state.served)
        return {"observation": obs, "action_mask": self._mask[step].copy()}

    def _mask_icu(self) -> None:
        """The ICU beds are gone for good (classic never frees one): ICU patients are
        unservable from now on."""
        self._icu_masked = True
        slots = self._icu_slots
        self._rows[:, [s * F + CAN_SERVE for s in slots]] = 0.0
        self._mask[:, slots] = 0


BLOCK_CACHE_SIZE = 8192
"""Per-patient table blocks kept per task shape (a few hundred bytes each); the fixed
tasks draw a few hundred distinct patients in all, generated tasks may draw more (the
cache then starts over)."""
_Shape = tuple[int, int, int, int]
_Draw = tuple[int, int, int, int, bool, bool]
_BLOCKS: dict[_Shape, dict[_Draw, tuple[np.ndarray, np.ndarray]]] = {}
_TAILS: dict[tuple[_Shape, int], tuple[np.ndarray, np.ndarray]] = {}


def episode_tables(scenario: Scenario, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only per-step observations and masks of ``scenario`` as if nobody were
    served (what :class:`EpisodeEncoder` starts from), for callers that keep them."""
    task = scenario.task
    shape = (task.max_steps, task.num_doctors, task.icu_beds, n_slots)
    rows, mask = _episode_tables(shape, scenario.patients)
    rows.flags.writeable = mask.flags.writeable = False
    return rows, mask


def _episode_tables(
    shape: _Shape, pats: tuple[EpisodePatient, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Writable per-step observations (context entries that depend only on the step
    filled in) and masks of one episode's patients, put together from cached
    per-patient blocks (see EpisodeEncoder): two concatenations per reset."""
    blocks = _BLOCKS.get(shape)
    if blocks is None or len(blocks) > BLOCK_CACHE_SIZE:
        blocks = _BLOCKS[shape] = {}
    obs_parts, mask_parts = [], []
    for p in pats:
        d = (p.arrival_step, p.deterioration_countdown, p.severity, p.reported_severity,
             p.requires_icu, p.requires_specialist)  # fmt: skip
        b = blocks.get(d)
        if b is None:
            b = blocks[d] = _patient_block(shape, d)
        obs_parts.append(b[0])
        mask_parts.append(b[1])
    tail = _TAILS.get((shape, len(pats)))
    if tail is None:
        tail = _TAILS[shape, len(pats)] = _tail_blocks(shape, len(pats))
    obs_parts.append(tail[0])
    mask_parts.append(tail[1])
    return np.concatenate(obs_parts, axis=1), np.concatenate(mask_parts, axis=1)


def _patient_block(
    shape: tuple[int, int, int, int], draw: tuple[int, int, int, int, bool, bool]
) -> tuple[np.ndarray, np.ndarray]:
    """One patient's ``(T + 1, F)`` rows and ``(T + 1, 1)`` mask column, per step, as
    if never served (read-only: shared between episodes)."""
    max_steps, num_doctors, icu_beds, _ = shape
    a, c, sev, rep, icu, spec = draw
    t = np.arange(max_steps + 1)
    arrived = a <= t
    ticks = np.where(arrived, t - a + (a > 0), 0)
    det = (c > 0) & (ticks >= c)
    worse = max(1, sev - 1)
    can = num_doctors >= (2 if spec else 1) and (not icu or icu_beds >= 1)
    rows = np.zeros((max_steps + 1, F), dtype=OBS_DTYPE)
    rows[:, PRESENT] = arrived
    rows[:, REPORTED] = np.where(det, worse, rep)
    rows[:, WAIT] = ticks
    critical = int(Condition.CRITICAL) if worse == 1 else int(Condition.AT_RISK)
    rows[:, CONDITION] = np.where(det, critical, 0)
    rows[:, COUNTDOWN] = np.where((c > 0) & ~det, c - ticks, 0)
    rows[:, ICU] = icu
    rows[:, SPECIALIST] = spec
    rows[:, CAN_SERVE] = can
    rows *= rows[:, PRESENT : PRESENT + 1]
    mask = (arrived & can).astype(MASK_DTYPE)[:, None]
    rows.flags.writeable = mask.flags.writeable = False
    return rows, mask


def _tail_blocks(shape: _Shape, n_patients: int) -> tuple[np.ndarray, np.ndarray]:
    """What follows the patients' blocks (read-only): empty slots and the context
    entries that depend only on the step; empty slots' mask entries and the wait
    action's (always legal)."""
    max_steps, num_doctors, icu_beds, n_slots = shape
    pad = n_slots - n_patients
    obs = np.zeros((max_steps + 1, pad * F + G), dtype=OBS_DTYPE)
    ctx = obs[:, pad * F :]
    t = np.arange(max_steps + 1)
    ctx[:, STEP] = t
    ctx[:, STEPS_REMAINING] = max_steps - t
    ctx[:, DOCTORS] = num_doctors
    ctx[:, ICU_TOTAL] = icu_beds
    mask = np.zeros((max_steps + 1, pad + 1), dtype=MASK_DTYPE)
    mask[:, pad] = 1
    obs.flags.writeable = mask.flags.writeable = False
    return obs, mask

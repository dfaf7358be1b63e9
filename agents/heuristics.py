"""Heuristic consultants for the queue envs, on the shared :class:`~agents.base.Policy`
interface. They read only the numeric observation (reported severities, waits,
countdowns, the mask), never the engine, and work on one observation (``act``) or a
batch from a vector env (``act_vec``) with the same array code.

Reference definitions (they reproduce Queue Doctor's published unseeded figures,
see ``tests/test_heuristics.py``):

* ``severity_greedy`` (alias ``highest_severity``): among patients that can be served
  now, the lowest reported severity; ties by longest wait, then arrival order.
* ``fifo``: the first servable patient in arrival order.
* ``deterioration_greedy``: severity-greedy, but a patient whose visible deterioration
  countdown is at most :data:`DETERIORATION_HORIZON` counts one level more urgent
  (and, at equal urgency, goes first), so it is served before it worsens.
* ``random``: a uniformly random legal action (waiting included).

All wait only when nobody can be served.
"""

from __future__ import annotations

import numpy as np

from agents.base import Observation, Policy, PolicyContext, register
from envs.observation import COUNTDOWN, REPORTED, WAIT, F

DETERIORATION_HORIZON = 2
"""Countdowns (steps) at or below which a patient is treated as one level worse."""
_WAIT_WEIGHT = 1_000.0  # severity dominates; waits are < 1000 steps


def _rows_and_legal(observation: Observation) -> tuple[np.ndarray, np.ndarray, int]:
    """``(..., N, F)`` patient rows, ``(..., N)`` legal serves, N; any leading batch dims."""
    mask = observation["action_mask"]
    n = mask.shape[-1] - 1
    flat = observation["observation"]
    rows = flat[..., : n * F].reshape(*flat.shape[:-1], n, F)
    return rows, mask[..., :n] != 0, n


def _argmin_legal(key: np.ndarray, legal: np.ndarray, wait_action: int) -> np.ndarray:
    # argmin returns the first minimum: ties fall back to arrival (slot) order.
    best = np.argmin(np.where(legal, key, np.inf), axis=-1)
    return np.where(legal.any(axis=-1), best, wait_action)


class _ArrayPolicy(Policy):
    """A heuristic written once as array code over any leading batch shape."""

    def choose(self, observation: Observation) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: Observation) -> int:
        return int(self.choose(observation))

    def act_vec(self, observations: Observation) -> np.ndarray:
        return np.asarray(self.choose(observations), dtype=np.int64)


@register("severity_greedy")
class SeverityGreedy(_ArrayPolicy):
    name = "severity_greedy"

    def choose(self, observation: Observation) -> np.ndarray:
        rows, legal, n = _rows_and_legal(observation)
        key = rows[..., REPORTED] * _WAIT_WEIGHT - rows[..., WAIT]
        return _argmin_legal(key, legal, n)

    def act(self, observation: Observation) -> int:
        """``choose`` for one observation as plain Python (same pick: the hot path of a
        single env, where NumPy's per-call overhead on 7–30-entry arrays costs more than
        the work; tests check they agree)."""
        mask = observation["action_mask"]
        if mask.ndim != 1:
            return int(self.choose(observation))
        n = mask.shape[0] - 1
        item = observation["observation"].item
        best, best_rep, best_wait = n, 0.0, 0.0
        # Lowest report, then longest wait (choose's key, waits < _WAIT_WEIGHT); only a
        # strictly better key replaces the best: ties stay in slot order, as choose.
        for s, ok in enumerate(mask.tolist()[:n]):
            if ok:
                rep, wait = item(s * F + REPORTED), item(s * F + WAIT)
                if best == n or rep < best_rep or (rep == best_rep and wait > best_wait):
                    best, best_rep, best_wait = s, rep, wait
        return best


register("highest_severity")(SeverityGreedy)


@register("fifo")
class Fifo(_ArrayPolicy):
    name = "fifo"

    def choose(self, observation: Observation) -> np.ndarray:
        _, legal, n = _rows_and_legal(observation)
        return np.where(legal.any(axis=-1), np.argmax(legal, axis=-1), n)


@register("deterioration_greedy")
class DeteriorationGreedy(_ArrayPolicy):
    name = "deterioration_greedy"

    def choose(self, observation: Observation) -> np.ndarray:
        rows, legal, n = _rows_and_legal(observation)
        cd = rows[..., COUNTDOWN]
        soon = (cd > 0) & (cd <= DETERIORATION_HORIZON)
        urgency = np.maximum(1.0, rows[..., REPORTED] - soon)
        # Half a level ahead of equally urgent patients, then longest wait.
        key = (urgency - 0.5 * soon) * _WAIT_WEIGHT - rows[..., WAIT]
        return _argmin_legal(key, legal, n)


RANDOM_BLOCK = 1024
"""Uniform draws :class:`RandomLegal` takes from its generator at a time (one NumPy call
per block instead of one per step); the picks are those of one draw per entry."""


@register("random")
class RandomLegal(_ArrayPolicy):
    """Uniform legal action: one uniform draw per action entry (legal or not), the
    largest legal draw wins. Draws come from one seeded stream in order, whether they
    are taken one observation at a time (``act``, from a buffer of
    :data:`RANDOM_BLOCK` draws) or for a batch (``choose`` / ``act_vec``), so mixing the
    two plays exactly what either alone would."""

    name = "random"

    def __init__(self, context: PolicyContext | None = None, seed: int | None = None) -> None:
        super().__init__(context)
        self._rng = np.random.default_rng(seed)
        self._buf: list[float] = []  # drawn, not used yet: the stream's next values
        self._pos = 0

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._buf, self._pos = [], 0

    def _draws(self, k: int) -> list[float]:
        """The stream's next ``k`` uniform draws, from the buffer (refilled a block at a
        time)."""
        pos = self._pos
        if pos + k > len(self._buf):
            rest = self._buf[pos:]
            self._buf = rest + self._rng.random(max(RANDOM_BLOCK, k - len(rest))).tolist()
            pos = 0
        self._pos = pos + k
        return self._buf[pos : pos + k]

    def _draw_array(self, shape: tuple[int, ...]) -> np.ndarray:
        """The stream's next draws as an array of ``shape`` (buffered ones first)."""
        k = int(np.prod(shape))
        left = len(self._buf) - self._pos
        if k <= left:
            return np.array(self._draws(k)).reshape(shape)
        rest = np.array(self._buf[self._pos :])
        self._buf, self._pos = [], 0
        return np.concatenate([rest, self._rng.random(k - left)]).reshape(shape)

    def choose(self, observation: Observation) -> np.ndarray:
        mask = observation["action_mask"]
        # Uniform noise on legal entries, -1 elsewhere: the argmax is a uniform legal pick.
        noise = np.where(mask != 0, self._draw_array(mask.shape), -1.0)
        return np.argmax(noise, axis=-1)

    def act(self, observation: Observation) -> int:
        """``choose`` for one observation as plain Python, same draws and pick (the
        first largest legal draw; 0 when nothing is legal, as argmax); tests check they
        agree."""
        mask = observation["action_mask"]
        if mask.ndim != 1:
            return int(self.choose(observation))
        legal = mask.tolist()
        best, best_x = 0, -1.0
        for a, x in enumerate(self._draws(len(legal))):
            if legal[a] and x > best_x:
                best, best_x = a, x
        return best

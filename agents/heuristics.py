"""Heuristic consultants for the queue envs, on the shared :class:`~agents.base.Policy`
interface. They read only the numeric observation (reported severities, waits,
countdowns, the mask), never the engine.

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
    mask = observation["action_mask"]
    n = mask.shape[0] - 1
    rows = observation["observation"][: n * F].reshape(n, F)
    return rows, mask[:n] != 0, n


def _argmin_legal(key: np.ndarray, legal: np.ndarray, wait_action: int) -> int:
    if not legal.any():
        return wait_action
    # argmin returns the first minimum: ties fall back to arrival (slot) order.
    return int(np.argmin(np.where(legal, key, np.inf)))


@register("severity_greedy")
class SeverityGreedy(Policy):
    name = "severity_greedy"

    def act(self, observation: Observation) -> int:
        rows, legal, n = _rows_and_legal(observation)
        key = rows[:, REPORTED] * _WAIT_WEIGHT - rows[:, WAIT]
        return _argmin_legal(key, legal, n)


register("highest_severity")(SeverityGreedy)


@register("fifo")
class Fifo(Policy):
    name = "fifo"

    def act(self, observation: Observation) -> int:
        _, legal, n = _rows_and_legal(observation)
        return int(np.argmax(legal)) if legal.any() else n


@register("deterioration_greedy")
class DeteriorationGreedy(Policy):
    name = "deterioration_greedy"

    def act(self, observation: Observation) -> int:
        rows, legal, n = _rows_and_legal(observation)
        cd = rows[:, COUNTDOWN]
        soon = (cd > 0) & (cd <= DETERIORATION_HORIZON)
        urgency = np.maximum(1.0, rows[:, REPORTED] - soon)
        # Half a level ahead of equally urgent patients, then longest wait.
        key = (urgency - 0.5 * soon) * _WAIT_WEIGHT - rows[:, WAIT]
        return _argmin_legal(key, legal, n)


@register("random")
class RandomLegal(Policy):
    name = "random"

    def __init__(self, context: PolicyContext | None = None, seed: int | None = None) -> None:
        super().__init__(context)
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, observation: Observation) -> int:
        legal = np.flatnonzero(observation["action_mask"])
        return int(legal[self._rng.integers(legal.shape[0])])

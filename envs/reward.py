"""Serve reward (MTS decay on true severity and wait) and the ``wait()`` penalty.

The float expressions are Queue Doctor's, kept literally so that every reward is
bit-identical to the original engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMMEDIATE_CLIFF = (1.00, 0.60, 0.20)
"""Severity 1: reward at wait 0, 1, 2; 0.0 from wait 3 on."""
LINEAR_DECAY = {2: (1.00, 0.125), 3: (0.85, 0.071), 4: (0.60, 0.040), 5: (0.40, 0.020)}
"""Severity → (reward at wait 0, decay per step of wait), floored at 0."""

WAIT_PENALTY_PER_IMMEDIATE = -0.3
WAIT_PENALTY_URGENT = -0.10
WAIT_PENALTY_ANY = -0.05
UNKNOWN_PATIENT_PENALTY = -0.1
REWARD_DECIMALS = 4
"""Served rewards are rounded to 4 places before the graders sum them."""


def serve_reward(severity: int, wait: int) -> float:
    """Reward for serving a patient of true ``severity`` after ``wait`` steps."""
    if severity == 1:
        return IMMEDIATE_CLIFF[wait] if wait < len(IMMEDIATE_CLIFF) else 0.0
    base, decay = LINEAR_DECAY[severity]
    return max(0.0, base - wait * decay)


_TABLE_WAITS = 64
SERVE_REWARD_TABLE: tuple[tuple[float, ...], ...] = tuple(
    tuple(serve_reward(s, w) for w in range(_TABLE_WAITS)) if s else () for s in range(6)
)
"""``SERVE_REWARD_TABLE[s][w]`` = :func:`serve_reward` for w < 64 (hot-path lookup)."""


ROUNDED_SERVE_REWARD_TABLE: tuple[tuple[float, ...], ...] = tuple(
    tuple(round(r, REWARD_DECIMALS) for r in row) for row in SERVE_REWARD_TABLE
)
"""``ROUNDED_SERVE_REWARD_TABLE[s][w]`` = ``round(serve_reward(s, w), REWARD_DECIMALS)``
for w < 64: the served record's reward without a ``round`` call per serve."""


def fast_serve_reward(severity: int, wait: int) -> float:
    row = SERVE_REWARD_TABLE[severity]
    return row[wait] if wait < _TABLE_WAITS else serve_reward(severity, wait)


def serve_rewards(severity: int, wait: int) -> tuple[float, float]:
    """:func:`serve_reward` and its value rounded to :data:`REWARD_DECIMALS` places, from
    the tables when ``wait`` < 64."""
    if wait < _TABLE_WAITS:
        return SERVE_REWARD_TABLE[severity][wait], ROUNDED_SERVE_REWARD_TABLE[severity][wait]
    r = serve_reward(severity, wait)
    return r, round(r, REWARD_DECIMALS)


def wait_penalty(servable_reported: Sequence[int]) -> float:
    """Penalty of ``wait()`` given the reported severities of servable patients."""
    if not servable_reported:
        return 0.0
    emergencies = 0
    urgent = False
    for r in servable_reported:
        if r == 1:
            emergencies += 1
        elif r <= 3:
            urgent = True
    if emergencies:
        return WAIT_PENALTY_PER_IMMEDIATE * emergencies
    return WAIT_PENALTY_URGENT if urgent else WAIT_PENALTY_ANY


def serve_reward_arrays(max_wait: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`serve_reward` and its value rounded as the served records round it
    (Python's ``round``) as ``(6, max_wait + 1)`` arrays indexed [severity, wait] (row 0
    unused, zeros): the lookup of the batched engines."""
    raw = np.array([[serve_reward(s, w) if s else 0.0 for w in range(max_wait + 1)]
                    for s in range(6)])  # fmt: skip
    return raw, np.array([[round(float(r), REWARD_DECIMALS) for r in row] for row in raw])

"""Strict input checks shared by every env (classic Gymnasium single and vector, the
``ed`` PettingZoo parallel and AEC envs, the single-agent ``gym_ed``, NurseSim) and by
the tool sessions the server plays.

One rule everywhere: an action or a seed is an integer — a Python ``int`` or a NumPy
integer scalar (what ``Discrete.sample()`` and RLlib hand back) — never a ``bool``, a
float (``1.0``, ``1.9``, ``inf``, ``nan``), a string or an array of another dtype.
Anything else is a ``ValueError`` naming the expected form, raised before the env's
state changes. Seeds must also be non-negative: Queue Doctor's ``random.Random(-s)``
silently replays seed ``s`` and Gymnasium refuses negative seeds, so a negative seed
is refused on every ruleset, API and transport alike.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

INTEGER_FORM = "a Python int or a NumPy integer scalar (not bool, float or str)"


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is an integer scalar, else None."""
    if type(value) is int:  # the common case first (bool is a subclass, not this type)
        return value
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        return int(value)  # a 0-d integer array (some samplers return these)
    return None


def check_action(value: Any, expected: str, name: str = "action") -> int:
    """``value`` as an int; ``ValueError`` naming ``expected`` (e.g. "an int in 0..10")
    for a bool, float, non-finite, str or any other non-integer."""
    as_int = _as_int(value)
    if as_int is None:
        raise ValueError(
            f"{name} must be {expected} — {INTEGER_FORM}; got {type(value).__name__} {value!r:.80}"
        )
    return as_int


def check_action_array(values: Any, count: int, expected: str, name: str = "actions") -> np.ndarray:
    """A batch of ``count`` integer actions as an int64 array; a float, bool or object
    dtype (or a wrong length) is a ``ValueError`` naming the expected form."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be {count} integers ({expected}) with an integer dtype; "
            f"got dtype {arr.dtype} {values!r:.80}"
        )
    arr = arr.astype(np.int64).reshape(-1)
    if arr.shape[0] != count:
        raise ValueError(f"expected {count} {name} ({expected}), got {arr.shape[0]}")
    return arr


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """None, or ``seed`` as a non-negative int; else ``ValueError`` naming the form."""
    if seed is None:
        return None
    as_int = _as_int(seed)
    if as_int is None or as_int < 0:
        raise ValueError(
            f"{name} must be a non-negative integer ({INTEGER_FORM}) or None; "
            f"got {type(seed).__name__} {seed!r:.80}"
        )
    return as_int


def check_agent_ids(actions: Any, agents: Collection[str]) -> Mapping[str, Any]:
    """``actions`` must be a mapping whose keys are all among ``agents``."""
    if not isinstance(actions, Mapping):
        raise ValueError(
            f"actions must be a dict {{agent id: action}} over {sorted(agents)}; "
            f"got {type(actions).__name__}"
        )
    unknown = [k for k in actions if k not in agents]
    if unknown:
        shown = ", ".join(f"{k!r:.40}" for k in unknown[:5])
        raise ValueError(f"unknown agent id(s) {shown}; the agents are {', '.join(agents)}")
    return actions


__all__ = ["INTEGER_FORM", "check_action", "check_action_array", "check_agent_ids", "check_seed"]

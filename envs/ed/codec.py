"""The ``ed`` action and observation encoding: the one definition every user shares
(the engine, the envs, the tool session, the bound, the oracle, the role heuristics,
the planner and the LLM players).

Actions, per role, with ``N`` slots (slot = arrival order); the last action is END:

* nurse ``slot * N_CATEGORIES + category - 1`` (category 1..5): triage ``slot``;
* pharmacist ``slot * N_DRUGS + drug`` (drug = index in :data:`~envs.ed.config.DRUGS`);
* consultant ``slot``: serve ``slot``.

Observations: a role's flat ``observation`` is ``N`` rows of its per-patient features
(:data:`NURSE_FEATURES`, :data:`PHARMACIST_FEATURES`, :data:`CONSULTANT_FEATURES`)
then its context (the ``*_CONTEXT`` tuples), in these column orders;
:mod:`envs.ed.observation` fills them. :data:`COLUMNS` / :data:`CONTEXT_COLUMNS` map
names to columns, :func:`split` cuts a flat observation into (rows, context).
"""

from __future__ import annotations

import numpy as np

from envs.ed.config import DRUGS, N_CATEGORIES, N_DRUGS, Role
from envs.ed.scenario import CHART_FEATURES

# ----------------------------------------------------------------------- actions
ACTIONS_PER_SLOT: dict[Role, int] = {
    Role.NURSE: N_CATEGORIES,
    Role.PHARMACIST: N_DRUGS,
    Role.CONSULTANT: 1,
}


def action_size(role: Role, n_slots: int) -> int:
    """Discrete action count of ``role`` with ``n_slots`` slots (END included)."""
    return n_slots * ACTIONS_PER_SLOT[role] + 1


def end_action(role: Role, n_slots: int) -> int:
    return n_slots * ACTIONS_PER_SLOT[role]


def slots_of(role: Role, n_actions: int) -> int:
    """The slot count behind an action space (or mask) of ``n_actions`` entries."""
    return (n_actions - 1) // ACTIONS_PER_SLOT[role]


def action_slot(role: Role, action: int) -> int:
    """The slot a (non-END) action of ``role`` acts on."""
    return action // ACTIONS_PER_SLOT[role]


def slot_mask(role: Role, mask: np.ndarray, slot: int) -> np.ndarray:
    """The entries of ``mask`` (or any per-action array) that act on ``slot``."""
    k = ACTIONS_PER_SLOT[role]
    return mask[slot * k : (slot + 1) * k]


def by_slot(role: Role, mask: np.ndarray, n_slots: int) -> np.ndarray:
    """``mask`` without END as a ``(n_slots, actions per slot)`` view."""
    k = ACTIONS_PER_SLOT[role]
    return mask[: n_slots * k].reshape(n_slots, k)


def nurse_action(slot: int, category: int) -> int:
    return slot * N_CATEGORIES + category - 1


def decode_nurse(action: int) -> tuple[int, int]:
    """(slot, category 1..5) of a non-END nurse action."""
    slot, c = divmod(action, N_CATEGORIES)
    return slot, c + 1


def pharmacist_action(slot: int, drug: int) -> int:
    return slot * N_DRUGS + drug


def decode_pharmacist(action: int) -> tuple[int, int]:
    """(slot, drug index) of a non-END pharmacist action."""
    return divmod(action, N_DRUGS)


def consultant_action(slot: int) -> int:
    return slot


# ------------------------------------------------------------------ observations
NURSE_FEATURES = (
    "present", "triaged", "assigned_category", "retriage_allowed", "condition", "wait",
    "self_reported_urgency", *CHART_FEATURES,
)  # fmt: skip
NURSE_CONTEXT = (
    "step", "steps_remaining", "triage_left", "triage_capacity", "untriaged", "queue_length",
)  # fmt: skip
PHARMACIST_FEATURES = (
    "present", "triaged", "category", "flowchart", "condition", "countdown", "wait",
    *(f"allergy_{d.value}" for d in DRUGS), *(f"given_{d.value}" for d in DRUGS),
)  # fmt: skip
PHARMACIST_CONTEXT = (
    "step", "steps_remaining", "dispense_left", "dispense_capacity",
    *(f"stock_{d.value}" for d in DRUGS),
)  # fmt: skip
CONSULTANT_FEATURES = (
    "present", "visible_category", "triaged", "wait", "condition", "countdown",
    "requires_icu", "requires_specialist", "servable", "medicated",
)  # fmt: skip
CONSULTANT_CONTEXT = (
    "step", "steps_remaining", "doctors_left", "doctors_total", "icu_available", "icu_total",
    "queue_length", "untriaged",
)  # fmt: skip
FEATURES: dict[Role, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Role.NURSE: (NURSE_FEATURES, NURSE_CONTEXT),
    Role.PHARMACIST: (PHARMACIST_FEATURES, PHARMACIST_CONTEXT),
    Role.CONSULTANT: (CONSULTANT_FEATURES, CONSULTANT_CONTEXT),
}
"""role → (per-patient feature names, context names), in column order."""
COLUMNS: dict[Role, dict[str, int]] = {
    role: {name: i for i, name in enumerate(f)} for role, (f, _) in FEATURES.items()
}
"""role → feature name → column of a row."""
CONTEXT_COLUMNS: dict[Role, dict[str, int]] = {
    role: {name: i for i, name in enumerate(g)} for role, (_, g) in FEATURES.items()
}
"""role → context name → index into the context."""
N_FEATURES: dict[Role, int] = {role: len(f) for role, (f, _) in FEATURES.items()}


def split(role: Role, observation: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows ``(n_slots, F)``, context) views of a role's flat observation vector."""
    f = N_FEATURES[role]
    return observation[: n_slots * f].reshape(n_slots, f), observation[n_slots * f :]

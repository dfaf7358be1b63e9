"""Numeric observations of the three ``ed`` roles (no true severity anywhere).

Each role's ``observation`` is float32 of shape ``(N * F_role + G_role,)``: N rows of
per-patient features (slot = arrival order; a row is all zeros unless the patient is
waiting), then the role's context. Feature names, in column order:
:data:`NURSE_FEATURES`, :data:`PHARMACIST_FEATURES`, :data:`CONSULTANT_FEATURES` and
the ``*_CONTEXT`` tuples. Categories are 1..5 (0 = none); condition 0 stable,
1 at_risk, 2 critical; countdown = visible steps until deterioration (0 = none
pending or stopped); flowchart 0 = not charted, else 1 + index in
:class:`~envs.clinical.Flowchart`; drug columns follow :data:`~envs.ed.config.DRUGS`.
"""

from __future__ import annotations

import numpy as np

from envs.clinical.presentation import VITAL_FIELDS
from envs.ed.config import DRUGS, FLOWCHARTS, N_DRUGS, Place, Role
from envs.ed.engine import EdState, consultant_slots, nurse_slots
from envs.ed.scenario import CHART_FEATURES

OBS_DTYPE = np.float32
MASK_DTYPE = np.int8

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
FEATURES = {
    Role.NURSE: (NURSE_FEATURES, NURSE_CONTEXT),
    Role.PHARMACIST: (PHARMACIST_FEATURES, PHARMACIST_CONTEXT),
    Role.CONSULTANT: (CONSULTANT_FEATURES, CONSULTANT_CONTEXT),
}
_CHART_HIGH = {
    "age": 120, "male": 1, "arrival_mode": 2, "injury": 1, "flowchart": len(FLOWCHARTS),
    "hr": 250, "rr": 60, "sbp": 260, "dbp": 160, "spo2": 100, "temp": 43,
    **{f"{v}_missing": 1 for v in VITAL_FIELDS}, "avpu": 4, "pain": 10, "pain_missing": 1,
}  # fmt: skip


def obs_size(role: Role, n_slots: int) -> int:
    f, g = FEATURES[role]
    return n_slots * len(f) + len(g)


def highs(role: Role, n_slots: int, max_steps: int, doctors: int, icu: int, config) -> np.ndarray:
    """Upper bounds of every entry (all lower bounds are 0); a 0 bound is widened to 1."""
    cap = {"step": max_steps, "steps_remaining": max_steps, "wait": max_steps,
           "countdown": max_steps, "queue_length": n_slots, "untriaged": n_slots,
           "doctors_left": doctors, "doctors_total": doctors, "icu_available": icu,
           "icu_total": icu, "triage_left": config.triage_capacity,
           "triage_capacity": config.triage_capacity, "dispense_left": config.dispense_capacity,
           "dispense_capacity": config.dispense_capacity, "condition": 2, "category": 5,
           "assigned_category": 5, "visible_category": 5, "self_reported_urgency": 5,
           **_CHART_HIGH}  # fmt: skip
    stock = max(config.stock, default=1)
    f, g = FEATURES[role]
    row = [cap.get(name, stock if name.startswith("stock_") else 1) for name in f]
    ctx = [cap.get(name, stock if name.startswith("stock_") else 1) for name in g]
    return np.maximum(np.array(row * n_slots + ctx, dtype=OBS_DTYPE), 1)


def _rows(n_slots: int, n_feat: int) -> np.ndarray:
    return np.zeros((n_slots, n_feat), dtype=OBS_DTYPE)


def _pack(rows: np.ndarray, ctx: list[float]) -> np.ndarray:
    return np.concatenate([rows.ravel(), np.asarray(ctx, dtype=OBS_DTYPE)])


def encode_nurse(s: EdState) -> np.ndarray:
    n = s.n
    rows = _rows(s.n_slots, len(NURSE_FEATURES))
    w = s.place == Place.WAITING
    r = rows[:n]
    r[:, 0] = w
    r[:, 1] = s.triaged > 0
    r[:, 2] = s.triaged
    r[:, 3] = nurse_slots(s) & (s.triaged > 0)
    r[:, 4] = s.condition
    r[:, 5] = s.step - s.arrival
    r[:, 6] = s.reported
    r[:, 7:] = s.scenario.charts
    r *= w[:, None]
    mc = s.config
    ctx = [s.step, s.max_steps - s.step, s.budget[Role.NURSE], mc.triage_capacity,
           int((w & (s.triaged == 0)).sum()), int(w.sum())]  # fmt: skip
    return _pack(rows, ctx)


def encode_pharmacist(s: EdState) -> np.ndarray:
    n = s.n
    rows = _rows(s.n_slots, len(PHARMACIST_FEATURES))
    w = s.place == Place.WAITING
    r = rows[:n]
    r[:, 0] = w
    r[:, 1] = s.triaged > 0
    r[:, 2] = s.triaged
    r[:, 3] = s.scenario.charts[:, CHART_FEATURES.index("flowchart")]
    r[:, 4] = s.condition
    r[:, 5] = np.maximum(s.countdown, 0)
    r[:, 6] = s.step - s.arrival
    r[:, 7 : 7 + N_DRUGS] = s.scenario.allergies
    r[:, 7 + N_DRUGS :] = s.given
    r *= w[:, None]
    ctx = [s.step, s.max_steps - s.step, s.budget[Role.PHARMACIST],
           s.config.dispense_capacity, *s.stock]  # fmt: skip
    return _pack(rows, ctx)


def encode_consultant(s: EdState) -> np.ndarray:
    n = s.n
    rows = _rows(s.n_slots, len(CONSULTANT_FEATURES))
    w = s.place == Place.WAITING
    r = rows[:n]
    tri = s.triaged > 0
    r[:, 0] = w
    r[:, 1] = np.where(tri, s.triaged, s.reported)
    r[:, 2] = tri
    r[:, 3] = s.step - s.arrival
    r[:, 4] = s.condition
    r[:, 5] = np.maximum(s.countdown, 0)
    r[:, 6] = s.icu
    r[:, 7] = s.need > 1
    r[:, 8] = consultant_slots(s)
    r[:, 9] = s.given.any(axis=1)
    r *= w[:, None]
    task = s.scenario.task
    ctx = [s.step, s.max_steps - s.step, s.budget[Role.CONSULTANT], task.num_doctors,
           s.icu_available, task.icu_beds, int(w.sum()), int((w & ~tri).sum())]  # fmt: skip
    return _pack(rows, ctx)


ENCODERS = {
    Role.NURSE: encode_nurse,
    Role.PHARMACIST: encode_pharmacist,
    Role.CONSULTANT: encode_consultant,
}

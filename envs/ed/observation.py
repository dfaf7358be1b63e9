"""Numeric observations of the three ``ed`` roles (no true severity anywhere).

Each role's ``observation`` is float32 of shape ``(N * F_role + G_role,)``: N rows of
per-patient features (slot = arrival order; a row is all zeros unless the patient is
waiting), then the role's context. Feature names, in column order (the layout is
defined in :mod:`envs.ed.codec`): :data:`NURSE_FEATURES`, :data:`PHARMACIST_FEATURES`,
:data:`CONSULTANT_FEATURES` and the ``*_CONTEXT`` tuples. Categories are 1..5 (0 =
none); condition 0 stable, 1 at_risk, 2 critical; countdown = visible steps until
deterioration (0 = none pending or stopped); flowchart 0 = not charted, else 1 + index in
:class:`~envs.clinical.Flowchart`; drug columns follow :data:`~envs.ed.config.DRUGS`.
"""

from __future__ import annotations

import numpy as np

from envs.clinical.presentation import VITAL_FIELDS
from envs.ed.codec import (  # noqa: F401 (the column layout, re-exported where it always was)
    CONSULTANT_CONTEXT,
    CONSULTANT_FEATURES,
    FEATURES,
    NURSE_CONTEXT,
    NURSE_FEATURES,
    PHARMACIST_CONTEXT,
    PHARMACIST_FEATURES,
    by_slot,
)
from envs.ed.config import FLOWCHARTS, N_DRUGS, Place, Role
from envs.ed.engine import EdState, consultant_slots, nurse_slots
from envs.ed.scenario import CHART_FEATURES

OBS_DTYPE = np.float32
MASK_DTYPE = np.int8

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


_NURSE, _PHARMACIST, _CONSULTANT = tuple(Role)  # plain names: enum class lookups are slow
_WAITING = int(Place.WAITING)


class _Common:
    """Per-step quantities every encoder needs, computed once (see :func:`encode_all`)."""

    __slots__ = ("w", "wf", "wait", "tri", "countdown", "queue", "untriaged")

    def __init__(self, s: EdState) -> None:
        w = self.w = s.place == _WAITING
        self.wf = w.astype(OBS_DTYPE)[:, None]  # row multiplier: non-waiting rows are 0
        self.wait = s.step - s.arrival
        tri = self.tri = s.triaged > 0
        self.countdown = np.maximum(s.countdown, 0)
        self.queue = int(np.count_nonzero(w))
        self.untriaged = self.queue - int(np.count_nonzero(tri[w]))


def _static(s: EdState, role: Role, n_feat: int) -> np.ndarray:
    """The episode-constant columns of ``role``'s patient rows (dynamic columns 0),
    built once per episode and kept in ``s.cache``."""
    key = ("obs_static", role)
    rows = s.cache.get(key)
    if rows is None:
        sc = s.scenario
        rows = np.zeros((s.n, n_feat), dtype=OBS_DTYPE)
        if role is _NURSE:
            rows[:, 7:] = sc.charts
        elif role is _PHARMACIST:
            rows[:, 3] = sc.charts[:, _FLOWCHART_COL]
            rows[:, 7 : 7 + N_DRUGS] = sc.allergies
        else:
            rows[:, 6] = s.icu
            rows[:, 7] = s.need > 1
        s.cache[key] = rows
    return rows


def _buffer(s: EdState, role: Role, n_feat: int) -> tuple[np.ndarray, np.ndarray]:
    """A fresh observation of ``role`` holding only the static columns (zeros
    elsewhere) and the view of its first ``n`` rows: one copy of an episode template."""
    key = ("obs_template", role)
    template = s.cache.get(key)
    if template is None:
        template = np.zeros(s.n_slots * n_feat + _N_CONTEXT[role], dtype=OBS_DTYPE)
        template[: s.n * n_feat].reshape(s.n, n_feat)[:] = _static(s, role, n_feat)
        s.cache[key] = template
    out = template.copy()
    return out, out[: s.n * n_feat].reshape(s.n, n_feat)


def encode_nurse(
    s: EdState, common: _Common | None = None, nurse_ok: np.ndarray | None = None
) -> np.ndarray:
    """The nurse's observation. ``common`` and ``nurse_ok`` (:func:`nurse_slots`,
    e.g. read off the current mask) only save recomputation."""
    c = _Common(s) if common is None else common
    ok = nurse_slots(s) if nurse_ok is None else nurse_ok
    out, r = _buffer(s, _NURSE, _NF)
    r[:, 0] = c.w
    r[:, 1] = c.tri
    r[:, 2] = s.triaged
    r[:, 3] = ok & c.tri
    r[:, 4] = s.condition
    r[:, 5] = c.wait
    r[:, 6] = s.reported
    r *= c.wf
    out[-_N_CONTEXT[_NURSE] :] = (
        s.step, s.max_steps - s.step, s.budget[_NURSE], s.config.triage_capacity,
        c.untriaged, c.queue,
    )  # fmt: skip
    return out


def encode_pharmacist(s: EdState, common: _Common | None = None) -> np.ndarray:
    c = _Common(s) if common is None else common
    out, r = _buffer(s, _PHARMACIST, _PF)
    r[:, 0] = c.w
    r[:, 1] = c.tri
    r[:, 2] = s.triaged
    r[:, 4] = s.condition
    r[:, 5] = c.countdown
    r[:, 6] = c.wait
    r[:, 7 + N_DRUGS :] = s.given
    r *= c.wf
    ctx = out[-_N_CONTEXT[_PHARMACIST] :]
    ctx[:4] = (s.step, s.max_steps - s.step, s.budget[_PHARMACIST], s.config.dispense_capacity)
    ctx[4:] = s.stock
    return out


def encode_consultant(
    s: EdState, common: _Common | None = None, servable: np.ndarray | None = None
) -> np.ndarray:
    """The consultant's observation; ``servable`` (:func:`consultant_slots`, e.g. the
    current mask's first ``n`` entries) only saves recomputation."""
    c = _Common(s) if common is None else common
    out, r = _buffer(s, _CONSULTANT, _CF)
    r[:, 0] = c.w
    # v1 (consultant_sees_self_report False): urgency only through the nurse's triage.
    r[:, 1] = np.where(c.tri, s.triaged, s.reported if s.config.consultant_sees_self_report else 0)
    r[:, 2] = c.tri
    r[:, 3] = c.wait
    r[:, 4] = s.condition
    r[:, 5] = c.countdown
    r[:, 8] = consultant_slots(s) if servable is None else servable
    r[:, 9] = s.given.any(axis=1)
    r *= c.wf
    task = s.scenario.task
    out[-_N_CONTEXT[_CONSULTANT] :] = (
        s.step, s.max_steps - s.step, s.budget[_CONSULTANT], task.num_doctors,
        s.icu_available, task.icu_beds, c.queue, c.untriaged,
    )  # fmt: skip
    return out


ENCODERS = {
    _NURSE: encode_nurse,
    _PHARMACIST: encode_pharmacist,
    _CONSULTANT: encode_consultant,
}


def encode_all(s: EdState, masks: dict[Role, np.ndarray] | None = None) -> dict[Role, np.ndarray]:
    """All three observations of ``s`` (fresh arrays), sharing the per-step work;
    ``masks`` — the current :func:`~envs.ed.engine.masks` of ``s`` — saves recomputing
    the legality columns. Equal to ``{role: ENCODERS[role](s)}``."""
    c = _Common(s)
    n = s.n
    if masks is None:
        ok, servable = nurse_slots(s), consultant_slots(s)
    else:
        ok = by_slot(_NURSE, masks[_NURSE], n)[:, 0] != 0
        servable = masks[_CONSULTANT][:n]
    return {
        _NURSE: encode_nurse(s, c, ok),
        _PHARMACIST: encode_pharmacist(s, c),
        _CONSULTANT: encode_consultant(s, c, servable),
    }


_NF, _PF, _CF = len(NURSE_FEATURES), len(PHARMACIST_FEATURES), len(CONSULTANT_FEATURES)
_N_CONTEXT = {role: len(g) for role, (_, g) in FEATURES.items()}
_FLOWCHART_COL = CHART_FEATURES.index("flowchart")

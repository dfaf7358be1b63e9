"""``ed_planner``: a non-clairvoyant receding-horizon planner for the consultant, and
the ``planner`` team (heuristic nurse and pharmacist, planning consultant).

At every decision the consultant solves a small integer program over the patients it
can *see* waiting, for the next :data:`HORIZON` steps, and serves the patient the plan
serves now with the largest estimated reward (then re-plans at the next sub-step,
so a triage made meanwhile is used at once). It is certainty-equivalent model
predictive control: the hidden truth is replaced by its estimate from the
observation, never read from the episode:

* true category ← the nurse's triage (:data:`UNKNOWN_CATEGORY` while untriaged),
  upgraded by the visible condition (critical → 1, at risk → one level), and one
  level worse from the visible countdown on (a pending deterioration);
* rules ← the public config (``PolicyContext.config``): serve-reward table, treatment
  steps, LWBS patience and death wait; doctors still busy with the planner's own
  earlier treatments (it remembers them), ICU beds left.

Future arrivals are not modelled (they are unknown). Cost: one HiGHS MILP of at most
``patients × HORIZON`` binaries per consultant decision (milliseconds).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from agents.base import Observation, Policy, PolicyContext, register
from agents.roles import UNKNOWN_CATEGORY, serve_choices, upgrade
from envs.ed import codec
from envs.ed.config import V1, EdConfig, Role
from envs.ed.engine import ed_serve_reward
from envs.types import Condition

HORIZON = 6
"""Steps the consultant plans ahead."""
EARLY_BONUS = 1e-4
"""Tie-break per step earlier: of two equal plans, serve sooner."""

_CRITICAL = int(Condition.CRITICAL)
_COL = codec.COLUMNS[Role.CONSULTANT]
_CTX = codec.CONTEXT_COLUMNS[Role.CONSULTANT]


def estimated_category(visible: int, condition: int) -> int:
    """The consultant's best guess of a waiting patient's true category."""
    base = int(visible) if visible else int(UNKNOWN_CATEGORY)
    return upgrade(base, int(condition))


@register("ed_planner")
class EdPlanner(Policy):
    name = "ed_planner"

    def __init__(self, context: PolicyContext | None = None, horizon: int = HORIZON) -> None:
        super().__init__(context)
        cfg = getattr(context, "config", None) if context else None
        self.config: EdConfig = cfg if cfg is not None else V1
        self.horizon = horizon
        self.commit: dict[int, int] = {}  # step → doctor slots held by my treatments
        self.critical_since: dict[int, int] = {}  # slot → step first seen critical
        self.first_category: dict[int, int] = {}  # slot → first triaged category seen

    def reset(self, seed: int | None = None) -> None:
        self.commit = {}
        self.critical_since = {}
        self.first_category = {}

    def act(self, observation: Observation) -> int:
        n, legal = serve_choices(observation)
        if not legal.any():
            return n
        rows, ctx = codec.split(Role.CONSULTANT, observation["observation"], n)
        step = int(ctx[_CTX["step"]])
        present = rows[:, _COL["present"]] > 0
        for slot in np.flatnonzero(present):
            slot = int(slot)
            if rows[slot, _COL["condition"]] == _CRITICAL:
                self.critical_since.setdefault(slot, step)
            elif rows[slot, _COL["visible_category"]] and slot not in self.critical_since:
                self.first_category.setdefault(slot, int(rows[slot, _COL["visible_category"]]))
        choice = self.plan_now(rows, ctx, legal)
        if choice is None:
            return n
        need = 2 if rows[choice, _COL["requires_specialist"]] else 1
        cat = estimated_category(rows[choice, _COL["visible_category"]],
                                 rows[choice, _COL["condition"]])  # fmt: skip
        for u in range(step + 1, step + self.config.duration(cat)):
            self.commit[u] = self.commit.get(u, 0) + need
        return choice

    def plan_now(self, rows: np.ndarray, ctx: np.ndarray, legal: np.ndarray) -> int | None:
        """The slot to serve now under the plan (None: serve nobody now)."""
        cfg = self.config
        step = int(ctx[_CTX["step"]])
        h = min(self.horizon, int(ctx[_CTX["steps_remaining"]]))
        doctors = int(ctx[_CTX["doctors_total"]])
        free = [int(ctx[_CTX["doctors_left"]])]
        free += [doctors - self.commit.get(step + t, 0) for t in range(1, h)]
        cols: list[tuple[int, int, int]] = []  # (slot, t, duration)
        coef: list[float] = []
        for slot in np.flatnonzero(rows[:, _COL["present"]] > 0):
            r = rows[slot]
            c0 = estimated_category(r[_COL["visible_category"]], r[_COL["condition"]])
            # The category it came in with: the first one seen before it turned critical.
            arrived = self.first_category.get(int(slot), c0)
            cd = int(r[_COL["countdown"]])
            wait0 = int(r[_COL["wait"]])
            crit0 = self.critical_since.get(int(slot))  # step first seen critical
            for t in range(h):
                if t == 0 and not legal[slot]:
                    continue
                worse = 0 < cd <= t  # the visible countdown runs out first
                sev = max(1, c0 - 1) if worse else c0
                w = wait0 + t
                critical_for = None  # steps since it became category 1 (critical_clock)
                if sev == 1 and arrived > 1:
                    critical_for = t - cd if worse else step + t - (step if crit0 is None
                                                                    else crit0)  # fmt: skip
                pat = cfg.patience(sev)
                dead = (
                    cfg.death_wait
                    and sev == 1
                    and (critical_for if critical_for is not None else w) >= cfg.death_wait
                )
                if t > 0 and ((pat and w >= pat) or dead):
                    break  # gone before it could be seen
                cw = critical_for if cfg.critical_clock else None
                rew = ed_serve_reward(sev, arrived, w, cw)
                if rew > 0:
                    cols.append((int(slot), t, cfg.duration(sev)))
                    coef.append(rew + EARLY_BONUS * (h - t))
        if not cols:
            return None
        ri, ci, v, lo, hi = [], [], [], [], []
        row = 0

        def add(entries: list[tuple[int, float]], high: float) -> None:
            nonlocal row
            for i, x in entries:
                ri.append(row)
                ci.append(i)
                v.append(x)
            lo.append(-np.inf)
            hi.append(high)
            row += 1

        by_slot: dict[int, list[int]] = {}
        by_step: list[list[tuple[int, float]]] = [[] for _ in range(h)]
        icu: list[tuple[int, float]] = []
        for i, (slot, t, dur) in enumerate(cols):
            by_slot.setdefault(slot, []).append(i)
            need = 2.0 if rows[slot, _COL["requires_specialist"]] else 1.0
            for u in range(t, min(h, t + dur)):
                by_step[u].append((i, need))
            if rows[slot, _COL["requires_icu"]]:
                icu.append((i, 1.0))
        for ids in by_slot.values():
            add([(i, 1.0) for i in ids], 1)
        for t in range(h):
            if by_step[t]:
                add(by_step[t], max(0, free[t]))
        if icu:
            add(icu, int(ctx[_CTX["icu_available"]]))
        a = coo_array((v, (ri, ci)), shape=(row, len(cols))).tocsr()
        res = milp(c=-np.asarray(coef), constraints=[LinearConstraint(a, lo, hi)],
                   integrality=np.ones(len(cols)), bounds=Bounds(0, 1))  # fmt: skip
        if not res.success:
            return None
        now = [(coef[i], cols[i][0]) for i in np.flatnonzero(res.x > 0.5) if cols[i][1] == 0]
        return max(now)[1] if now else None

"""Clinical KPIs of a finished episode (post-hoc: they use the true severities).

* ``within_target_<c>``: share of true category-c patients who arrived during the
  episode and were seen within the MTS target time (c1 0 min, c2 10, c3 60, c4 120,
  c5 240; one step = 10 min); unserved patients count as not seen in time. NaN when
  no such patient arrived.
* ``mean_tt_<c>``: mean time to treatment in minutes of served category-c patients.
* ``missed_emergency_steps``: Queue Doctor's ``missed_emergencies``.
* ``left_unserved``: patients who arrived but were never served.

Categories are the true severities at arrival (before any deterioration).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from envs.classic.dynamics import ClassicState
from envs.types import MINUTES_PER_STEP, Severity

CATEGORIES = tuple(int(s) for s in Severity)


def category_kpis(
    arrived: Mapping[int, Iterable[int]], served_wait: Mapping[int, int]
) -> dict[str, float]:
    """``within_target_<c>`` and ``mean_tt_<c>`` for every category c, from the slots of
    the category-c patients who arrived (``arrived[c]``) and each served slot's wait in
    steps: the KPIs both engines report (``envs.ed.graders.episode_kpis`` too)."""
    out: dict[str, float] = {}
    for c in CATEGORIES:
        group = list(arrived.get(c, ()))
        target = Severity(c).target_minutes
        waits = [served_wait[s] * MINUTES_PER_STEP for s in group if s in served_wait]
        in_time = sum(1 for w in waits if w <= target)
        out[f"within_target_{c}"] = in_time / len(group) if group else math.nan
        out[f"mean_tt_{c}"] = sum(waits) / len(waits) if waits else math.nan
    return out


def episode_kpis(state: ClassicState) -> dict[str, float]:
    arrived = [p for p in state.scenario.patients if p.arrival_step <= state.step]
    served_wait = {r.slot: r.wait_time for r in state.served}
    by_category = {c: [p.slot for p in arrived if p.severity == c] for c in CATEGORIES}
    out = category_kpis(by_category, served_wait)
    out["missed_emergency_steps"] = float(state.missed_emergencies)
    out["left_unserved"] = float(len(arrived) - len(state.served))
    return out

"""``ed`` graders and clinical KPIs (docs/spec.md §2.2).

The three Queue Doctor formulas with the fixes of docs/spec.md §2.1 "known quirks":

* the normalising optimum is the clairvoyant bound of *this* episode
  (:func:`envs.ed.bound.solve`), not a stale constant;
* hard: survival is capped at 1 and counts the episode's own critical patients
  (those whose true severity was ≤ 2 at arrival or became so) that arrived;
  the clamp to [0.001, 0.999] comes *after* the missed-emergency penalty;
* medium / hard coverage terms use the episode's patients, not the written schedule.

With any v1 mechanism on (:attr:`EdConfig.is_v1 <envs.ed.config.EdConfig.is_v1>`,
``envs.ed_triage_v1``) the task ``score`` is instead :func:`serve_share`, the share of
the bound's serve reward the team earned (since 2026-12-02: on v1 the grader ranked the
clairvoyant schedule below the heuristic team on mass_casualty); the formula above stays
in the dict as ``grader_score``. v0 configs keep the grader as ``score`` (no
``grader_score`` key: :func:`grader_score` reads either).
"""

from __future__ import annotations

import math

import numpy as np

from envs.classic.graders import (
    HARD_WEIGHTS,
    MEDIUM_FAIRNESS_WEIGHT,
    MEDIUM_THROUGHPUT_WEIGHT,
    MISSED_EMERGENCY_PENALTY,
    MISSED_PENALTY_CAP,
    SCORE_DECIMALS,
    SCORE_MAX,
    SCORE_MIN,
    jains_fairness_index,
)
from envs.classic.kpis import category_kpis
from envs.ed.config import Place, Role
from envs.ed.engine import EdState
from envs.types import Grader, Severity


def _clamp(x: float) -> float:
    return min(SCORE_MAX, max(SCORE_MIN, x))


def _ratio(total: float, optimum: float) -> float:
    return min(1.0, total / optimum) if optimum > 0 else 1.0


def serve_share(reward: float, bound: float) -> float:
    """The v1 task score: R / R_bound, the share of the clairvoyant bound's serve reward
    earned (in [0, 1] because R ≤ R_bound). A bound of 0 (nothing servable for reward)
    leaves nothing to lose: 1.0. Not clamped, so a bound violation would show above 1."""
    return reward / bound if bound > 0 else 1.0


def grader_score(grader: dict) -> float:
    """Queue Doctor's grader (with the ``ed`` fixes) from a :func:`grade` dict: v1's
    ``grader_score``, v0's ``score``."""
    return grader.get("grader_score", grader["score"])


def grade(state: EdState, optimum: float) -> dict:
    """Grader dict of the episode so far; ``optimum`` = the episode's oracle value (or
    the static normaliser). ``score``: the grader (v0) or :func:`serve_share` (v1)."""
    task = state.scenario.task
    served = state.served
    total = sum(r.reward for r in served)
    n_served = len(served)
    out: dict = {
        "grader": task.grader.value,
        "cumulative_reward": round(total, 4),
        "optimal_reward": round(optimum, 4),
        "patients_served": n_served,
        "patients_total": state.n,
        "missed_emergencies": state.missed_emergencies,
    }
    time_score = _ratio(total, optimum)
    jfi = jains_fairness_index([r.wait_time for r in served])
    if task.grader is Grader.EASY:
        score = _clamp(time_score) if total > 0 else SCORE_MIN
    elif not served:
        score = SCORE_MIN
    elif task.grader is Grader.MEDIUM:
        coverage = n_served / state.n
        score = _clamp(
            MEDIUM_THROUGHPUT_WEIGHT * time_score * coverage + MEDIUM_FAIRNESS_WEIGHT * jfi
        )
        out |= {"throughput_score": round(time_score, 4), "served_fraction": round(coverage, 4),
                "fairness_score": round(jfi, 4)}  # fmt: skip
    else:
        arrived = state.place != Place.PENDING
        critical = arrived & (state.severity <= 2)
        served_slots = np.zeros(state.n, dtype=bool)
        served_slots[[r.slot for r in served]] = True
        n_crit = int(critical.sum())
        survival = min(1.0, (critical & served_slots).sum() / n_crit) if n_crit else 1.0
        resource_pat = arrived & (state.icu | (state.need > 1))
        n_res = int(resource_pat.sum())
        resource = (resource_pat & served_slots).sum() / n_res if n_res else 1.0
        w_s, w_t, w_f, w_r = HARD_WEIGHTS
        base = w_s * survival + w_t * time_score + w_f * jfi + w_r * resource
        penalty = min(MISSED_PENALTY_CAP, state.missed_emergencies * MISSED_EMERGENCY_PENALTY)
        score = _clamp(base - penalty)
        out |= {"survival_score": round(float(survival), 4), "time_score": round(time_score, 4),
                "fairness_score": round(jfi, 4), "resource_score": round(float(resource), 4),
                "missed_penalty": round(penalty, 4)}  # fmt: skip
    out["score"] = round(float(score), SCORE_DECIMALS)
    if state.config.is_v1:
        out["grader_score"] = out["score"]
        out["score"] = serve_share(total, optimum)
    return out


def normalised_score(reward: float, random_reward: float, bound: float) -> float:
    """(R − R_random) / (R_bound − R_random): 0 = the random team, 1 = the clairvoyant
    bound, on the same seed (serve rewards). Where the bound does not beat the random
    team there is nothing to separate and every policy scores 1."""
    span = bound - random_reward
    return (reward - random_reward) / span if span > NORMALISED_MIN_SPAN else 1.0


NORMALISED_MIN_SPAN = 1e-9


def episode_kpis(state: EdState) -> dict[str, float]:
    """Clinical KPIs (docs/spec.md §2.2); categories are the true severities at arrival."""
    arrived = state.place != Place.PENDING
    served_wait = {r.slot: r.wait_time for r in state.served}
    by_category = {int(c): np.flatnonzero(arrived & (state.arrival_severity == c))
                   for c in Severity}  # fmt: skip
    out = category_kpis(by_category, served_wait)
    triaged = state.triaged > 0
    n_tri = int(triaged.sum())
    under = int((triaged & (state.triaged > state.triage_true)).sum())
    over = int((triaged & (state.triaged < state.triage_true)).sum())
    out["triaged"] = float(n_tri)
    out["under_triage_rate"] = under / n_tri if n_tri else math.nan
    out["over_triage_rate"] = over / n_tri if n_tri else math.nan
    out["under_triage_events"] = float(state.under_triage_events)
    out["missed_emergency_steps"] = float(state.missed_emergencies)
    out["adverse_events"] = float(state.adverse_events)
    out["prevented_deteriorations"] = float(state.prevented)
    out["deteriorations"] = float(state.deteriorations)
    out["doses"] = float(state.doses)
    out["left_unserved"] = float(int(arrived.sum()) - len(state.served))
    for role in Role:
        out[f"illegal_{role.agent}"] = float(state.illegal[role])
    if state.config.is_v1:
        out["lwbs"] = float(state.lwbs)
        out["deaths"] = float(state.deaths)
    return out

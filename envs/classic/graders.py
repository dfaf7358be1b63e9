"""Episode graders. ``classic`` reproduces Queue Doctor's three formulas and dicts
exactly (quirks included, docs/spec.md §2.1); the README lists the quirks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from envs.classic.dynamics import ClassicState, ServedRecord
from envs.types import Grader, TaskSpec

SCORE_MIN, SCORE_MAX = 0.001, 0.999
SCORE_DECIMALS = 4
MEDIUM_THROUGHPUT_WEIGHT, MEDIUM_FAIRNESS_WEIGHT = 0.60, 0.40
HARD_WEIGHTS = (0.35, 0.25, 0.20, 0.20)  # survival, time, fairness, resources
MISSED_EMERGENCY_PENALTY, MISSED_PENALTY_CAP = 0.03, 0.55


def jains_fairness_index(values: Sequence[float]) -> float:
    """JFI(x) = (Σx)² / (n·Σx²); 1.0 when n ≤ 1 or Σx² = 0."""
    if not values or len(values) == 1:
        return 1.0
    n = len(values)
    sum_x = sum(values)
    sum_x2 = sum(x * x for x in values)
    if sum_x2 == 0:
        return 1.0
    return (sum_x**2) / (n * sum_x2)


def _clamp_score(x: float) -> float:
    return min(SCORE_MAX, max(SCORE_MIN, x))


def grade_easy(task: TaskSpec, served: Sequence[ServedRecord], missed: int) -> dict:
    total = sum(s.reward for s in served)
    emergencies = sum(1 for s in served if s.true_severity == 1)
    # A fresh dict per call (callers may edit it); the rounding and formatting are
    # cached, as episodes of one task end on a few hundred distinct sums.
    return dict(_easy_dict(task.optimal_reward, task.num_patients, total, len(served), emergencies))


EASY_CACHE_SIZE = 4096
"""Distinct easy-grader results kept (keys: the task's optimal reward and size, the
episode's reward sum and counts)."""


@lru_cache(maxsize=EASY_CACHE_SIZE, typed=True)  # typed: an empty sum is int 0
def _easy_dict(optimal: float, n_total: int, total: float, n_served: int, emergencies: int) -> dict:
    score = _clamp_score(total / optimal)
    return {
        "score": round(score, SCORE_DECIMALS),
        "cumulative_reward": round(total, 4),
        "optimal_reward": optimal,
        "patients_served": n_served,
        "patients_total": n_total,
        "emergencies_served": emergencies,
        "feedback": (
            f"Served {n_served}/{n_total} patients. "
            f"Cumulative reward: {total:.3f} / {optimal:.3f} optimal. "
            f"Score: {score:.4f}."
        ),
    }


def grade_medium(task: TaskSpec, served: Sequence[ServedRecord], missed: int) -> dict:
    if not served:
        return {
            "score": SCORE_MIN,
            "throughput_score": 0.0,
            "fairness_score": 0.0,
            "patients_served": 0,
            "feedback": "No patients served.",
        }
    total_patients = task.num_patients
    optimal = task.optimal_reward
    total = sum(s.reward for s in served)
    throughput = min(1.0, total / optimal)
    served_fraction = len(served) / total_patients
    effective = throughput * served_fraction
    fairness = jains_fairness_index([s.wait_time for s in served])
    score = _clamp_score(MEDIUM_THROUGHPUT_WEIGHT * effective + MEDIUM_FAIRNESS_WEIGHT * fairness)
    return {
        "score": round(score, SCORE_DECIMALS),
        "effective_throughput": round(effective, 4),
        "throughput_score": round(throughput, 4),
        "served_fraction": round(served_fraction, 4),
        "fairness_score": round(fairness, 4),
        "cumulative_reward": round(total, 4),
        "optimal_reward": optimal,
        "patients_served": len(served),
        "patients_total": total_patients,
        "missed_emergencies": missed,
        "feedback": (
            f"Effective throughput: {effective:.4f} "
            f"({throughput:.4f} per-patient x {served_fraction:.4f} coverage), "
            f"Fairness (JFI): {fairness:.4f}. "
            f"Composite (60/40): {score:.4f}."
        ),
    }


def grade_hard(task: TaskSpec, served: Sequence[ServedRecord], missed: int) -> dict:
    if not served:
        return {
            "score": SCORE_MIN,
            "survival_score": 0.0,
            "time_score": 0.0,
            "fairness_score": 0.0,
            "resource_score": 0.0,
            "patients_served": 0,
            "feedback": "No patients served.",
        }
    # Quirk kept: the denominator counts the schedule as written, the numerator the
    # (perturbed, possibly deteriorated) true severity at service, so it can exceed 1.
    critical_total = task.critical_total
    critical_served = sum(1 for s in served if s.true_severity <= 2)
    survival = critical_served / critical_total if critical_total else 1.0
    optimal = task.optimal_reward
    total = sum(s.reward for s in served)
    time_score = min(1.0, total / optimal)
    fairness = jains_fairness_index([s.wait_time for s in served])
    served_ids = {s.patient_id for s in served}
    resource_ids = [a.patient_id for a in task.arrivals if a.requires_icu or a.requires_specialist]
    resource_served = sum(1 for pid in resource_ids if pid in served_ids)
    resource = resource_served / len(resource_ids) if resource_ids else 1.0
    w_s, w_t, w_f, w_r = HARD_WEIGHTS
    # Quirk kept: the clamp comes before the penalty, so a score can be 0.0.
    base = _clamp_score(w_s * survival + w_t * time_score + w_f * fairness + w_r * resource)
    missed_penalty = min(MISSED_PENALTY_CAP, missed * MISSED_EMERGENCY_PENALTY)
    score = max(0.0, base - missed_penalty)
    return {
        "score": round(score, SCORE_DECIMALS),
        "base_score": round(base, 4),
        "survival_score": round(survival, 4),
        "time_score": round(time_score, 4),
        "fairness_score": round(fairness, 4),
        "resource_score": round(resource, 4),
        "missed_penalty": round(missed_penalty, 4),
        "missed_emergencies": missed,
        "patients_served": len(served),
        "patients_total": task.num_patients,
        "critical_patients_served": critical_served,
        "critical_patients_total": critical_total,
        "feedback": (
            f"Survival: {survival:.4f} | "
            f"Time: {time_score:.4f} | "
            f"Fairness: {fairness:.4f} | "
            f"Resources: {resource:.4f} | "
            f"Base: {base:.4f} | "
            f"Missed penalty: -{missed_penalty:.4f} | "
            f"Final: {score:.4f}."
        ),
    }


GraderFn = Callable[[TaskSpec, Sequence[ServedRecord], int], dict]
CLASSIC_GRADERS: dict[Grader, GraderFn] = {
    Grader.EASY: grade_easy,
    Grader.MEDIUM: grade_medium,
    Grader.HARD: grade_hard,
}


def grade_records(task: TaskSpec, served: Sequence[ServedRecord], missed: int) -> dict:
    """Grader dict from the served records (in service order) and missed emergencies."""
    return CLASSIC_GRADERS[task.grader](task, served, missed)


def grade(state: ClassicState) -> dict:
    """Grader dict of the episode so far (``score`` in [0, 1])."""
    return grade_records(state.scenario.task, state.served, state.missed_emergencies)


def batch_scores(
    task: TaskSpec,
    served: np.ndarray,
    served_step: np.ndarray,
    reward: np.ndarray,
    wait: np.ndarray,
    true_severity: np.ndarray,
    is_resource: np.ndarray,
    missed: np.ndarray,
) -> list[float]:
    """Grader scores of a batch of episodes, equal to :func:`grade_records`' ``score``.

    Arrays are ``(B, N)`` per slot (``served`` mask, service step, the 4-place reward,
    wait and true severity at service, resource-patient flag) plus ``missed`` ``(B,)``.
    Exactness: rewards are summed sequentially in service order (``cumsum``, as
    Python's ``sum``), integer sums stay integers, every formula keeps the scalar
    graders' operation order, and the final rounding is Python's ``round``.
    """
    order = np.argsort(np.where(served, served_step, np.iinfo(np.int64).max), axis=1)
    in_order = np.take_along_axis(np.where(served, reward, 0.0), order, 1)
    total = np.cumsum(in_order, axis=1)[:, -1] if in_order.shape[1] else np.zeros(len(missed))
    n = served.sum(1)
    w = np.where(served, wait, 0)
    sum_w, sum_w2 = w.sum(1), (w * w).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        jfi = np.where((n <= 1) | (sum_w2 == 0), 1.0, sum_w**2 / (n * sum_w2))
    opt = task.optimal_reward
    if task.grader is Grader.EASY:
        score = np.clip(total / opt, SCORE_MIN, SCORE_MAX)
    elif task.grader is Grader.MEDIUM:
        effective = np.minimum(1.0, total / opt) * (n / task.num_patients)
        score = np.clip(
            MEDIUM_THROUGHPUT_WEIGHT * effective + MEDIUM_FAIRNESS_WEIGHT * jfi,
            SCORE_MIN,
            SCORE_MAX,
        )
    else:
        critical = (served & (true_severity <= 2)).sum(1)
        survival = critical / task.critical_total if task.critical_total else np.ones(len(n))
        resource = (
            (served & is_resource).sum(1) / task.resource_total
            if task.resource_total
            else np.ones(len(n))
        )
        w_s, w_t, w_f, w_r = HARD_WEIGHTS
        base = np.clip(
            w_s * survival + w_t * np.minimum(1.0, total / opt) + w_f * jfi + w_r * resource,
            SCORE_MIN,
            SCORE_MAX,
        )
        penalty = np.minimum(MISSED_PENALTY_CAP, missed * MISSED_EMERGENCY_PENALTY)
        score = np.maximum(0.0, base - penalty)
    score = np.where(n == 0, SCORE_MIN, score)
    return [round(float(x), SCORE_DECIMALS) for x in score]

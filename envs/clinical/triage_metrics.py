"""Triage agreement metrics: one code path for every policy and every data set.

Used by ``experiments/eval_nurse.py`` (generated patients and real charts) and
``llm_policy.evaluate`` (the SFT splits). Categories are 1 (most urgent) … 5; an
assigned ``None`` is an unparsed answer (an LLM's): it counts as wrong in exact
agreement and within-one, is neither under- nor over-triage, and is left out of the
weighted kappa (``kappa_n`` says on how many pairs it was computed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CATEGORIES = (1, 2, 3, 4, 5)
CONFUSION_COLUMNS = (*map(str, CATEGORIES), "unparsed")
CRITICAL = 2  # true categories 1..CRITICAL are the time-critical ones


def quadratic_weighted_kappa(true: Sequence[int], assigned: Sequence[int]) -> float:
    """Cohen's kappa with quadratic weights (Cohen 1968) over categories 1–5; NaN when
    undefined (fewer than two categories in play)."""
    t = np.asarray(true, dtype=int) - 1
    a = np.asarray(assigned, dtype=int) - 1
    k = len(CATEGORIES)
    observed = np.zeros((k, k))
    np.add.at(observed, (t, a), 1)
    n = observed.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(observed.sum(1), observed.sum(0)) / n
    i = np.arange(k)
    weights = (i[:, None] - i[None, :]) ** 2 / (k - 1) ** 2
    denominator = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / denominator) if denominator else float("nan")


def triage_metrics(true: Sequence[int], assigned: Sequence[int | None]) -> dict[str, Any]:
    """Agreement of ``assigned`` with ``true`` (the reference: ground truth, an expert
    panel): exact, quadratic-weighted kappa, within one level, under- and over-triage,
    the true 1–2 sent to 3–5, and the 5×6 confusion matrix (rows true 1–5; columns
    assigned 1–5, then unparsed)."""
    t = np.asarray(true, dtype=int)
    a = np.asarray([0 if x is None else int(x) for x in assigned], dtype=int)
    if t.shape != a.shape:
        raise ValueError(f"true has {t.size} entries, assigned {a.size}: pair them one to one")
    for name, values, allowed in (("true", t, set(CATEGORIES)), ("assigned", a, {0, *CATEGORIES})):
        bad = set(np.unique(values).tolist()) - allowed
        if bad:
            raise ValueError(f"{name} holds {sorted(bad)}: categories are 1..5 (None: unparsed)")
    parsed = a > 0
    cm = np.zeros((len(CATEGORIES), len(CONFUSION_COLUMNS)), dtype=int)
    np.add.at(cm, (t - 1, np.where(parsed, a - 1, len(CATEGORIES))), 1)
    high = t <= CRITICAL
    under = parsed & (a > t)
    over = parsed & (a < t)

    def rate(mask: np.ndarray, within: np.ndarray | None = None) -> float:
        if within is not None:
            mask = mask[within]
        return float(mask.mean()) if mask.size else 0.0

    return {
        "n": int(t.size),
        "accuracy": rate(a == t),
        "quadratic_weighted_kappa": quadratic_weighted_kappa(t[parsed], a[parsed]),
        "kappa_n": int(parsed.sum()),
        "within_one": rate(parsed & (np.abs(a - t) <= 1)),
        "under_triage_all": rate(under),
        "over_triage_all": rate(over),
        "n_true_1_2": int(high.sum()),
        "under_triage_true_1_2": rate(under, high),
        "true_1_2_assigned_3_to_5": rate(parsed & (a > CRITICAL), high),
        "parse_failures": int((~parsed).sum()),
        "confusion_matrix": cm.tolist(),
        "confusion_columns": list(CONFUSION_COLUMNS),
        "recall_per_category": {
            str(c): float(cm[c - 1, c - 1] / cm[c - 1].sum()) if cm[c - 1].sum() else None
            for c in CATEGORIES
        },
    }


METRIC_LABELS = {
    "accuracy": "exact agreement",
    "quadratic_weighted_kappa": "quadratic-weighted kappa",
    "within_one": "within one level",
    "under_triage_all": "under-triage (all)",
    "over_triage_all": "over-triage (all)",
    "under_triage_true_1_2": "under-triage of true 1-2",
    "true_1_2_assigned_3_to_5": "true 1-2 assigned 3-5",
}
"""The headline metrics, in report order, with their printed names."""


def format_confusion(m: dict[str, Any]) -> str:
    """The confusion matrix as text (the unparsed column only when something was)."""
    cols = CONFUSION_COLUMNS if m["parse_failures"] else CONFUSION_COLUMNS[:-1]
    lines = ["true\\assigned " + " ".join(f"{c:>5}" for c in cols)]
    for c, row in zip(CATEGORIES, m["confusion_matrix"], strict=True):
        lines.append(f"{c:>13} " + " ".join(f"{x:>5}" for x in row[: len(cols)]))
    return "\n".join(lines)

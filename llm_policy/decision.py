"""Score-mode decision rules over ranked candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def quantile_index(scores: Sequence[float], threshold: float) -> int:
    """Candidates ordered from most to least urgent (triage categories 1..5), scored by
    log-likelihood: the index of the first whose cumulative probability (softmax of the
    scores) reaches ``threshold``. 0.5 is the median category; below it the rule leans
    urgent, trading over-triage for less under-triage (the argmax is the mode instead)."""
    s = np.asarray(scores, dtype=float)
    p = np.exp(s - s.max())
    cum = np.cumsum(p / p.sum())
    return min(int(np.searchsorted(cum, threshold)), len(s) - 1)


def check_threshold(threshold: float | None, name: str = "triage_threshold") -> None:
    if threshold is not None and not 0 < threshold < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1 (or be None), got {threshold}")

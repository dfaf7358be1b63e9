"""Episode seeds shared by every env: which seeded scenario a ``reset`` plays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.validation import check_seed

EPISODE_SEED_BOUND = 2**31 - 1
"""Episode seeds drawn by an env's generator lie in ``[0, EPISODE_SEED_BOUND)``."""


def check_seed_range(seed_range: tuple[int, int] | None) -> None:
    if seed_range is not None and not 0 <= seed_range[0] < seed_range[1]:
        raise ValueError(f"seed_range must be (lo, hi) with 0 <= lo < hi, got {seed_range}")


def episode_seed(
    seed: int | None,
    rng: np.random.Generator,
    seeded: bool,
    seed_range: tuple[int, int] | None,
    options: Mapping[str, Any] | None,
) -> int | None:
    """The episode seed of a ``reset``: ``seed`` itself; else, once the env was seeded,
    the next draw of its generator ``rng``; else None (the schedule as written). With
    ``seed_range`` it is mapped into ``[lo, hi)`` (training envs keep evaluation seeds
    out); ``options["episode_seed"]`` overrides everything. A seed that is not a
    non-negative integer is a ``ValueError`` (:func:`envs.validation.check_seed`)."""
    seed = check_seed(seed)
    if seed is not None:
        chosen: int | None = int(seed)
    elif seeded:
        chosen = int(rng.integers(EPISODE_SEED_BOUND))
    else:
        chosen = None
    if chosen is not None and seed_range is not None:
        lo, hi = seed_range
        chosen = lo + chosen % (hi - lo)
    if options and "episode_seed" in options:
        chosen = check_seed(options["episode_seed"], 'options["episode_seed"]')
    return chosen

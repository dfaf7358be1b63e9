"""The policy interface every player implements: heuristics, the oracle's replay,
RLlib modules and LLMs.

A policy maps one observation dict, as the Gymnasium/PettingZoo envs emit it
(``{"observation": float32 array, "action_mask": int8 array}``), to a discrete action,
and must only return actions its mask allows. ``act_batch`` exists so that batched
players (neural nets, LLMs) can override it; heuristics inherit the loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.types import TaskSpec

Observation = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know about the env it plays before the first observation."""

    task: TaskSpec
    ruleset: str
    n_slots: int
    # In-process view of a waiting patient's charted presentation (slot → Presentation
    # or None), for policies that read the complaint text (the ``ed`` nurse and
    # pharmacist heuristics, LLM prompts); None when the env offers none.
    presentation: Callable[[int], Any] | None = None
    # The env's public rules (``ed``: its EdConfig), for planners; None when unknown.
    config: Any = None
    # The task an episode seed plays (``generated`` and the ``ed`` suite scenarios draw
    # one per seed; ``task`` is then only generator seed 0's), for planners that solve
    # the episode; None: every episode plays ``task``.
    task_for: Callable[[int | None], TaskSpec] | None = None


class Policy(ABC):
    """A player. ``reset(seed)`` is called at every episode start with the episode seed
    the env was reset with (stochastic policies reseed from it, the oracle solves it)."""

    name: str = "policy"

    def __init__(self, context: PolicyContext | None = None) -> None:
        self.context = context

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - optional hook
        """Start of an episode."""

    @abstractmethod
    def act(self, observation: Observation) -> int:
        """Return one legal action for this observation."""

    def act_batch(self, observations: Sequence[Observation]) -> list[int]:
        return [self.act(o) for o in observations]

    def act_vec(self, observations: Observation) -> np.ndarray:
        """Actions for a batched observation (leading batch axis on every array, as a
        Gymnasium vector env returns it). Heuristics override this with array code."""
        n = next(iter(observations.values())).shape[0]
        return np.array(
            [self.act({k: v[i] for k, v in observations.items()}) for i in range(n)],
            dtype=np.int64,
        )


PolicyFactory = Callable[..., Policy]
POLICIES: dict[str, PolicyFactory] = {}
"""Policy name → factory ``factory(context=PolicyContext | None, **options)``."""


def register(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def deco(factory: PolicyFactory) -> PolicyFactory:
        if name in POLICIES:
            raise ValueError(f"policy {name!r} registered twice")
        POLICIES[name] = factory
        return factory

    return deco


class UnknownPolicyError(ValueError):
    pass


def make_policy(name: str, context: PolicyContext | None = None, **options) -> Policy:
    """Build a registered policy by name (``random``, ``fifo``, ``severity_greedy`` …)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown policy {name!r}; registered: {', '.join(sorted(POLICIES))}"
        ) from None
    return factory(context=context, **options)

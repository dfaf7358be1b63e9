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

import numpy as np

Observation = Mapping[str, np.ndarray]


class Policy(ABC):
    """A stateless-by-default player. ``reset`` is called at every episode start."""

    name: str = "policy"

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - optional hook
        """Start of an episode; stochastic policies reseed here."""

    @abstractmethod
    def act(self, observation: Observation) -> int:
        """Return one legal action for this observation."""

    def act_batch(self, observations: Sequence[Observation]) -> list[int]:
        return [self.act(o) for o in observations]


PolicyFactory = Callable[..., Policy]
POLICIES: dict[str, PolicyFactory] = {}
"""Policy name → factory (``factory(n_slots=...)``); filled by :func:`register`."""


def register(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def deco(factory: PolicyFactory) -> PolicyFactory:
        if name in POLICIES:
            raise ValueError(f"policy {name!r} registered twice")
        POLICIES[name] = factory
        return factory

    return deco


class UnknownPolicyError(ValueError):
    pass


def make_policy(name: str, **kwargs) -> Policy:
    """Build a registered policy by name (``random``, ``fifo``, ``severity_greedy`` …)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown policy {name!r}; registered: {', '.join(sorted(POLICIES))}"
        ) from None
    return factory(**kwargs)

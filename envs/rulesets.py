"""Ruleset registry: name → the engine functions that implement it.

``classic`` is Queue Doctor's MDP (one patient served per step). The multi-agent
``ed`` ruleset (several doctor slots per step, nurse and pharmacist actions) registers
here too once it exists; every API layer looks rulesets up by name, never by if/elif.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs import dynamics, graders
from envs.types import Scenario


@dataclass(frozen=True)
class Ruleset:
    name: str
    description: str
    initial_state: Callable[[Scenario], Any]
    grade: Callable[[Any], dict]


CLASSIC = Ruleset(
    name="classic",
    description="Queue Doctor's engine, bit for bit: one patient served per step.",
    initial_state=dynamics.initial_state,
    grade=graders.grade,
)

RULESETS: dict[str, Ruleset] = {CLASSIC.name: CLASSIC}
PLANNED_RULESETS = {"ed": "the multi-agent ED ruleset (SPEC §2.2) is not implemented yet"}


class UnknownRulesetError(ValueError):
    pass


def get_ruleset(name: str) -> Ruleset:
    try:
        return RULESETS[name]
    except (KeyError, TypeError):
        why = PLANNED_RULESETS.get(name, "unknown ruleset") if isinstance(name, str) else "bad type"
        raise UnknownRulesetError(
            f"ruleset {name!r}: {why}; available: {', '.join(RULESETS)}"
        ) from None

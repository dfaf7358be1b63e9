"""Ruleset registry: name → the engine functions that implement it.

``classic`` is Queue Doctor's MDP (one patient served per step). The multi-agent
``ed`` ruleset (several doctor slots per step, nurse and pharmacist actions) is in
:data:`MULTI_AGENT_RULESETS` (engine :mod:`envs.ed.engine`, env
:mod:`envs.ed_triage_v0`, code in :mod:`envs.ed.parallel_env`); the single-agent APIs
built on the classic engine still refuse it by name. Every API layer looks rulesets up by
name, never by if/elif.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs.classic import dynamics, graders
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
"""Single-agent (classic) engines, used by the tool API, the Gymnasium queue envs and
the classic oracle."""
PLANNED_RULESETS = {
    "ed": "the multi-agent ED ruleset (docs/spec.md §2.2) has its own tool session: use "
    "envs.ed.tool_session.EdToolSession (a server started with --rulesets classic,ed, the "
    "default, routes start_task(ruleset='ed') to it) or envs.ed.parallel_env (PettingZoo)"
}


@dataclass(frozen=True)
class MultiAgentRuleset:
    """A ruleset with several roles: its engine module and its PettingZoo env."""

    name: str
    description: str
    engine: str  # module with initial_state / substep / masks
    env: str  # module with parallel_env() / env()


ED = MultiAgentRuleset(
    name="ed",
    description="The multi-agent ED (docs/spec.md §2.2): triage nurse, pharmacist, consultant; "
    "doctor slots per step, drugs, allergies, the episode's clairvoyant normaliser.",
    engine="envs.ed.engine",
    env="envs.ed_triage_v0",  # the public PettingZoo module id (code: envs.ed.parallel_env)
)
MULTI_AGENT_RULESETS: dict[str, MultiAgentRuleset] = {ED.name: ED}


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

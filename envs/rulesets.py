"""Ruleset registry: name → everything that implements the ruleset. The only dispatch.

Each :class:`Ruleset` entry names, as Gymnasium-style ``"module:attr"`` entry points
resolved on use (:meth:`Ruleset.load`, so that ``envs`` never imports ``agents`` at
import time), its engine, its envs, its tool session, its evaluators, its clairvoyant
bound and how the front door plays it, and says whether it is a ``team`` (several roles)
ruleset:

* ``classic`` — Queue Doctor's MDP, bit for bit (one patient served per step; one role,
  the consultant).
* ``ed`` — the multi-agent ED (docs/spec.md §2.2): triage nurse, pharmacist and
  consultant; several doctor slots per step.

Callers look an entry up by name (:func:`get_ruleset`) and use its attributes; nothing
outside this module branches on a ruleset's name. The single-agent APIs built on the
classic engine (tool session, ``QueueEnv``, vector env, classic oracle) take
:func:`single_agent_ruleset`, which refuses a team ruleset with a pointer to its own
adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from envs.classic import dynamics, graders
from envs.types import Scenario


@dataclass(frozen=True)
class Ruleset:
    """One ruleset. Fields ending in entry points are ``"module:attr"`` strings."""

    name: str
    description: str
    team: bool
    """Several roles: a PettingZoo env, team specs (``role=policy,...``) in --compare."""
    engine: str
    """Module of the transition functions (initial state, step, grade)."""
    envs: Mapping[str, str]
    """Env version → the public module id of its env (PettingZoo for team rulesets)."""
    gym_env: str
    """Entry point of the single-agent Gymnasium env the queue ids build."""
    tool_session: str
    """Entry point of the tool session class (what the server runs per client)."""
    bound: str
    """Entry point of the clairvoyant bound of one episode (reported beside every row)."""
    evaluators: Mapping[str, str]
    """--evaluator name → entry point of the function that plays the seeds."""
    front_door: str
    """Entry point of how ``experiments/run.py`` trains and evaluates it
    (:mod:`agents.frontdoor.plays`)."""
    rllib_config: str
    """Entry point of the RLlib AlgorithmConfig builder (base config, TrainSettings,
    training options) → config (:mod:`agents.rllib.training`)."""
    initial_state: Callable[[Scenario], Any] | None = None
    """Single-agent step API (classic engine): the state of a built scenario."""
    grade: Callable[[Any], dict] | None = None
    """Single-agent step API (classic engine): the grader of a final state."""
    elsewhere: str = ""
    """Why the single-agent step APIs refuse it and where to go instead."""

    def load(self, entry_point: str) -> Any:
        """Resolve one of this entry's entry points (a field name, e.g. ``"bound"``, or an
        evaluator name, e.g. ``"evaluators.rllib"``)."""
        field, _, key = entry_point.partition(".")
        value = getattr(self, field)
        return load(value[key] if key else value)


def load(entry_point: str) -> Any:
    """The object an ``"module:attr"`` entry point names."""
    module, _, attr = entry_point.partition(":")
    return getattr(import_module(module), attr)


CLASSIC = Ruleset(
    name="classic",
    description="Queue Doctor's engine, bit for bit: one patient served per step.",
    team=False,
    engine="envs.classic.dynamics",
    envs={"v0": "envs.gym_queue"},
    gym_env="envs.classic.gym_env:QueueEnv",
    tool_session="envs.classic.tool_session:ToolSession",
    bound="agents.oracle:solve",
    evaluators={
        "loop": "agents.evaluation:evaluate",
        "rllib": "agents.rllib.classic_evaluation:evaluate_in_env_runner",
    },
    front_door="agents.frontdoor.plays:CLASSIC_PLAY",
    rllib_config="agents.rllib.training:classic_config",
    initial_state=dynamics.initial_state,
    grade=graders.grade,
)

ED = Ruleset(
    name="ed",
    description="The multi-agent ED (docs/spec.md §2.2): triage nurse, pharmacist, consultant; "
    "doctor slots per step, drugs, allergies, the episode's clairvoyant normaliser.",
    team=True,
    engine="envs.ed.engine",
    # The public PettingZoo module ids (code: envs.ed.parallel_env, envs.ed.v1).
    envs={"v0": "envs.ed_triage_v0", "v1": "envs.ed_triage_v1"},
    gym_env="envs.ed.gym_env:EdConsultantEnv",
    tool_session="envs.ed.tool_session:EdToolSession",
    bound="envs.ed.bound:solve",
    evaluators={
        "loop": "agents.ed_evaluation:evaluate_teams",
        "rllib": "agents.rllib.evaluation:evaluate_in_env_runner",
    },
    front_door="agents.frontdoor.plays:TEAM_PLAY",
    rllib_config="agents.rllib.training:team_config",
    elsewhere="the multi-agent ED ruleset (docs/spec.md §2.2) has its own tool session: use "
    "envs.ed.tool_session.EdToolSession (a server started with --rulesets classic,ed, the "
    "default, routes start_task(ruleset='ed') to it) or envs.ed.parallel_env (PettingZoo)",
)

RULESETS: dict[str, Ruleset] = {r.name: r for r in (CLASSIC, ED)}
"""Every ruleset, classic first (the order of ``--ruleset`` choices and listings)."""
SINGLE_AGENT_RULESETS: dict[str, Ruleset] = {n: r for n, r in RULESETS.items() if not r.team}
"""Rulesets the classic engine's single-agent step APIs run."""
MULTI_AGENT_RULESETS: dict[str, Ruleset] = {n: r for n, r in RULESETS.items() if r.team}
"""Team rulesets (kept for callers of the former separate table)."""


class UnknownRulesetError(ValueError):
    pass


def get_ruleset(name: str) -> Ruleset:
    """The registry entry of ``name``; :class:`UnknownRulesetError` lists the names."""
    try:
        return RULESETS[name]
    except (KeyError, TypeError):
        why = "unknown ruleset" if isinstance(name, str) else "bad type"
        raise UnknownRulesetError(
            f"ruleset {name!r}: {why}; available: {', '.join(RULESETS)}"
        ) from None


def single_agent_ruleset(name: str) -> Ruleset:
    """The entry of a ruleset the classic single-agent step APIs run (its
    ``initial_state`` and ``grade``); a team ruleset is refused with where to go."""
    try:
        return SINGLE_AGENT_RULESETS[name]
    except (KeyError, TypeError):
        if not isinstance(name, str):
            why = "bad type"
        else:
            why = RULESETS[name].elsewhere if name in RULESETS else "unknown ruleset"
        raise UnknownRulesetError(
            f"ruleset {name!r}: {why}; available: {', '.join(SINGLE_AGENT_RULESETS)}"
        ) from None

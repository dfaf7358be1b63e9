"""The rollout loop every in-process evaluator plays episodes with: a team (one policy
per agent) on a PettingZoo-style parallel env. A one-role ruleset's Gymnasium env plays
as a one-role team through :class:`OneRoleEnv` (agent ``consultant``), so the classic
loop (:mod:`agents.evaluation`) and the ``ed`` loop (:mod:`agents.ed_evaluation`) are
this one loop with different per-step records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from agents.base import Policy

ONE_ROLE_AGENT = "consultant"
"""The agent id of a one-role ruleset's only role."""


class ParallelLike(Protocol):
    agents: list[str]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple: ...

    def step(self, actions: dict[str, Any]) -> tuple: ...


OnStep = Callable[[int, dict, dict, dict, dict, dict], None]
"""``on_step(parallel_step, observations before, actions, rewards, terminations, infos)``."""


def rollout(
    env: ParallelLike,
    team: Mapping[str, Policy],
    seed: int | None,
    on_step: OnStep | None = None,
) -> tuple[dict, int]:
    """Play one episode of ``env`` on episode ``seed`` (None: the schedule as written);
    return (the last step's infos, the number of parallel steps). Every policy is reset
    with the seed first; every live agent acts on its own observation each step."""
    for p in team.values():
        p.reset(seed)
    obs, _ = env.reset(seed=seed) if seed is not None else env.reset(options={"episode_seed": None})
    steps = 0
    infos: dict = {}
    while env.agents:
        actions = {a: team[a].act(obs[a]) for a in env.agents}
        before = obs
        obs, rewards, terms, _, infos = env.step(actions)
        if on_step is not None:
            on_step(steps, before, actions, rewards, terms, infos)
        steps += 1
    return infos, steps


class OneRoleEnv:
    """A single-agent Gymnasium env as a one-role parallel env (agent
    :data:`ONE_ROLE_AGENT`): the same observations, actions and rewards, keyed by agent."""

    def __init__(self, env: Any, agent: str = ONE_ROLE_AGENT) -> None:
        self.env = env
        self.agent = agent
        self.agents: list[str] = []

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.agents = [self.agent]
        return {self.agent: obs}, {self.agent: info}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, r, term, trunc, info = self.env.step(actions[self.agent])
        if term or trunc:
            self.agents = []
        a = self.agent
        return {a: obs}, {a: r}, {a: term}, {a: trunc}, {a: info}

"""Learning from the role heuristics: the ``hint`` observation.

A trained ``ed`` module need not rediscover what the role heuristics know. With hints
on, every agent's observation also holds ``hint`` — the one-hot (over the agent's
actions) of the action its role heuristic (:data:`agents.roles.ROLE_HEURISTICS`) would
take now — and the slot scorer (``model_config={"hints": True}``) reads it as per-slot
input features (and the END entry as a context feature). Optionally it also adds a
fixed prior to its logits, ``hint_weight × hint`` (:data:`HINT_WEIGHT`, 0 by default),
which starts the policy at the heuristic (residual policy learning: Silver et al.
2018; Johannink et al. 2019). The nurse and pharmacist heuristics read the
presentations through the env's in-process ``presentation`` view, which the numeric
observation lacks — the hint is how that knowledge reaches a module. Training and
evaluation compute the same hint.

The wrapper is a thin adapter over :class:`envs.ed_triage_v0.EdTriageParallelEnv`;
:class:`agents.rllib.training.ModulePolicy` recomputes the hint itself when it plays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from agents.base import Observation, Policy, PolicyContext, make_policy
from agents.rllib.wrappers import ObsWrapper, has_choice
from envs.ed.config import AGENTS, ROLE_OF

HINT_KEY = "hint"
HINT_WEIGHT = 0.0
"""Default logit prior of the hinted action: none, the hint is an input feature. A
prior of 4 (the hint sampled ~75 % of the time by an untrained scorer) kept the greedy
team identical to the heuristic team on basic_triage after the default 40 PPO
iterations (92.9 % of the bound), where the feature-only module reached 97.9 %; priors of
1 and 2 on dynamic_queue stayed within 0.002 of the heuristic team's score, paired by
seed (README). ``run.py --hint-weight`` sets it."""


def role_heuristic(agent: str, context: PolicyContext | None) -> Policy:
    """The heuristic whose action is ``agent``'s hint."""
    from agents.roles import ROLE_HEURISTICS

    return make_policy(ROLE_HEURISTICS[ROLE_OF[agent]], context=context)


def one_hot(action: int, size: int) -> np.ndarray:
    h = np.zeros(size, dtype=np.float32)
    h[action] = 1.0
    return h


def hint_space(mask_space: spaces.Box) -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=mask_space.shape, dtype=np.float32)


def with_hint(observation: Observation, heuristic: Policy) -> dict[str, np.ndarray]:
    """The observation dict plus the heuristic's one-hot action (END, the last, when it
    is the only legal one: every role heuristic ENDs then, so it is not asked)."""
    size = len(observation["action_mask"])
    action = heuristic.act(observation) if has_choice(observation) else size - 1
    return {**observation, HINT_KEY: one_hot(action, size)}


class HintedEdEnv(ObsWrapper):
    """``EdTriageParallelEnv`` whose observations carry each role heuristic's hint.

    Same agents, actions, rewards and infos; observation spaces gain ``hint``."""

    metadata = {"name": "ed_triage_hinted_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, env: Any) -> None:
        from agents.ed_evaluation import team_context

        super().__init__(env)
        context = team_context(env)
        self.heuristics = {a: role_heuristic(a, context) for a in AGENTS}
        self._spaces = {
            a: spaces.Dict(
                {**env.observation_space(a).spaces,
                 HINT_KEY: hint_space(env.observation_space(a)["action_mask"])}
            )
            for a in self.possible_agents
        }  # fmt: skip

    @property
    def unwrapped(self) -> Any:
        return self.env

    def _hinted(self, obs: dict[str, Observation]) -> dict[str, dict[str, np.ndarray]]:
        return {a: with_hint(o, self.heuristics[a]) for a, o in obs.items()}

    # After the last step the env has no agents and nothing to act on; its final
    # observations still get a (well-formed) hint.
    def observations(self, obs: dict[str, Observation]) -> dict[str, dict[str, np.ndarray]]:
        return self._hinted(obs)

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        for h in self.heuristics.values():
            h.reset(self.env.episode_seed)
        return self._hinted(obs), infos

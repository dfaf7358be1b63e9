"""A thin base for PettingZoo parallel-env wrappers that rewrite observations (and
optionally actions) per agent: the training-side adapters of the MAPPO critic
(:mod:`agents.rllib.central_critic`) and of parameter sharing
(:mod:`agents.rllib.sharing`). Agents, rewards, terminations and infos pass through
unchanged."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces


def has_choice(observation: dict[str, Any]) -> bool:
    """More than one legal action (END is always legal in the ``ed`` env)."""
    return int(observation["action_mask"].sum()) > 1


class ObsWrapper:
    """Delegates everything to ``env``; subclasses set ``self._spaces`` (agent →
    observation space) and override :meth:`observations` and, if the action space
    changes, :meth:`env_action` and :meth:`action_space`."""

    metadata = {"name": "ed_triage_wrapped", "render_modes": [], "is_parallelizable": True}

    def __init__(self, env: Any) -> None:
        self.env = env
        self.possible_agents = list(env.possible_agents)
        self._spaces: dict[str, spaces.Dict] = {
            a: env.observation_space(a) for a in self.possible_agents
        }
        self.render_mode = None

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.env.action_space(agent)

    def observations(self, obs: dict[str, dict]) -> dict[str, dict]:
        return obs

    def env_action(self, agent: str, action: Any) -> Any:
        return action

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self.observations(obs), infos

    def step(self, actions: dict[str, Any]):
        env_actions = {a: self.env_action(a, act) for a, act in actions.items()}
        obs, rewards, terms, truncs, infos = self.env.step(env_actions)
        return self.observations(obs), rewards, terms, truncs, infos

    def close(self) -> None:
        self.env.close()

    def render(self) -> Any:
        return self.env.render()

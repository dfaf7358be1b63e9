"""Decision steps: RLlib sees an ``ed`` agent only when it has a choice.

In the ``ed`` env every live agent acts at every sub-step, but about half of those
agent-steps have END as the only legal action (the nurse has nobody left to triage, the
pharmacist no drug to give, every doctor is busy): 47 % on mass_casualty, 46 % on
basic_triage, 35 % on dynamic_queue with a random team. A masked policy has nothing to
decide there, yet RLlib would run the module on each of them, store it, and train on it
(a zero-gradient sample that still costs forward, connectors and SGD).

:class:`DecisionStepsEnv` is RLlib's ``ParallelPettingZooEnv`` that, after every reset
and step, returns observations only for the agents with more than one legal action
(the env plays END for the others, as it does for a missing agent). A sub-step where
no agent has a choice is played through inside the same ``step`` (all END) and its
rewards added to that call's. Rewards are returned for every agent at every call:
RLlib's ``MultiAgentEpisode`` adds the rewards an agent receives between two of its
observations to its last action (its "hanging" reward), so each agent's return is
unchanged (rewards of sub-steps before anyone's first choice join the first
step's). At the end of the episode every agent gets its final observation and the
final infos. The simulated episodes are exactly the env's (same actions, same
transitions); what changes is what RLlib counts: env steps are the calls to ``step``
(sub-steps with a decision), agent steps are the decisions.

Training only, opt-in (``run.py --decision-steps``, ``TrainSettings.decision_steps``):
it trains ~1.1-1.5x the episodes per second, but in the front door's paired runs its
trained teams scored lower (docs/benchmarks/front_door_speed.md). The evaluators still
step every agent at every sub-step so their step logs stay whole.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

from agents.rllib.wrappers import has_choice

ALL = "__all__"


class DecisionStepsEnv(ParallelPettingZooEnv):
    """``ParallelPettingZooEnv`` over an ``ed`` parallel env (or a wrapper of one) that
    shows each agent only the sub-steps at which it has a choice (module docstring)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._carry: dict[str, float] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        # Rewards of sub-steps played before anyone's first choice join the first step's.
        obs, self._carry, done, infos = self._play_forced(obs, {}, infos)
        if done:
            raise RuntimeError("the ed episode ended before any agent had a choice")
        return self._deciders(obs, infos)

    def step(self, action_dict: dict[str, Any]):
        obs, rewards, terms, truncs, infos = self.par_env.step(action_dict)
        if self._carry:
            rewards = {a: r + self._carry.get(a, 0.0) for a, r in rewards.items()}
            self._carry = {}
        done = all(terms.values()) or all(truncs.values())
        if not done:
            obs, rewards, done, infos = self._play_forced(obs, rewards, infos)
        agents = list(rewards)
        terminateds = dict.fromkeys(agents, done)
        terminateds[ALL] = done
        truncateds = dict.fromkeys(agents, False)
        truncateds[ALL] = False
        if done:  # every agent's final observation and infos (score, KPIs, grader)
            return obs, rewards, terminateds, truncateds, infos
        obs, infos = self._deciders(obs, infos)
        return obs, rewards, terminateds, truncateds, infos

    def _play_forced(self, obs: dict, rewards: dict, infos: dict):
        """Step with all END while nobody has a choice; (obs, summed rewards, done,
        infos) at the first sub-step where someone has one, or at the episode's end."""
        rewards = dict(rewards)
        while not any(has_choice(o) for o in obs.values()):
            obs, step_rewards, terms, truncs, infos = self.par_env.step({})
            for agent, r in step_rewards.items():
                rewards[agent] = rewards.get(agent, 0.0) + r
            if all(terms.values()) or all(truncs.values()):
                return obs, rewards, True, infos
        return obs, rewards, False, infos

    @staticmethod
    def _deciders(obs: dict, infos: dict) -> tuple[dict, dict]:
        keep = [a for a, o in obs.items() if has_choice(o)]
        return {a: obs[a] for a in keep}, {a: infos[a] for a in keep if a in infos}

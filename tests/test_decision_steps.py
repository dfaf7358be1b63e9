"""agents.rllib.decisions: RLlib sees an ed agent only when it has a choice; the
simulated episode, the returns and the final infos are the env's."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from agents.ed_evaluation import team_context  # noqa: E402
from agents.rllib.decisions import DecisionStepsEnv  # noqa: E402
from agents.rllib.hints import role_heuristic  # noqa: E402
from agents.rllib.training import _ed_env_creator  # noqa: E402
from agents.rllib.wrappers import has_choice  # noqa: E402
from envs.ed_triage_v1 import ED_ENVS  # noqa: E402


def _play_plain(task: str, seed: int):
    env = ED_ENVS["v1"](task, normaliser="static")
    team = {a: role_heuristic(a, team_context(env)) for a in env.possible_agents}
    obs, _ = env.reset(seed=seed)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    substeps = choices = 0
    while env.agents:
        choices += sum(has_choice(o) for o in obs.values())
        obs, rewards, _, _, infos = env.step({a: team[a].act(o) for a, o in obs.items()})
        substeps += 1
        for a, r in rewards.items():
            returns[a] += r
    return returns, infos, substeps, choices


def _play_decisions(task: str, seed: int):
    wrapped = _ed_env_creator({"task": task, "ed_version": "v1", "decision_steps": True})
    assert isinstance(wrapped, DecisionStepsEnv)
    env = wrapped.par_env
    team = {a: role_heuristic(a, team_context(env)) for a in env.possible_agents}
    obs, _ = wrapped.reset(seed=seed)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    calls = decisions = 0
    while True:
        assert obs and all(has_choice(o) for o in obs.values())  # only real choices
        decisions += len(obs)
        obs, rewards, terms, truncs, infos = wrapped.step(
            {a: team[a].act(o) for a, o in obs.items()}
        )
        calls += 1
        for a, r in rewards.items():
            returns[a] += r
        assert not truncs["__all__"]
        if terms["__all__"]:
            assert set(obs) == set(env.possible_agents)  # everyone's final observation
            return returns, infos, calls, decisions


@pytest.mark.parametrize("task", ["mass_casualty", "basic_triage", "night_shift"])
def test_decision_steps_play_the_same_episode_with_about_half_the_agent_steps(task):
    for seed in (0, 7):
        plain_returns, plain_infos, substeps, choices = _play_plain(task, seed)
        returns, infos, calls, decisions = _play_decisions(task, seed)
        for a, r in plain_returns.items():
            assert returns[a] == pytest.approx(r, abs=1e-9)
            assert infos[a]["episode_return"] == pytest.approx(r, abs=1e-9)
            assert infos[a]["score"] == plain_infos[a]["score"]
            assert infos[a]["kpis"] == plain_infos[a]["kpis"]
        assert decisions == choices  # every choice is shown, nothing else
        assert calls <= substeps
        assert decisions < 0.75 * 3 * substeps


class _NoChoiceUntil:
    """A parallel env stand-in whose agents have no choice for the first ``k``
    sub-steps; each step pays every agent 1."""

    possible_agents = ["a", "b"]

    def __init__(self, k: int, length: int) -> None:
        self.k, self.length, self.t = k, length, 0
        self.agents: list[str] = []

    def observation_space(self, agent):
        from gymnasium import spaces

        return spaces.Dict({"observation": spaces.Box(0, 1, (1,)),
                            "action_mask": spaces.Box(0, 1, (3,), dtype=np.int8)})  # fmt: skip

    def action_space(self, agent):
        from gymnasium import spaces

        return spaces.Discrete(3)

    def _obs(self):
        legal = 2 if self.t >= self.k else 1
        mask = np.zeros(3, dtype=np.int8)
        mask[-legal:] = 1
        return {a: {"observation": np.zeros(1), "action_mask": mask} for a in self.agents}

    def reset(self, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        done = self.t >= self.length
        obs, rewards = self._obs(), dict.fromkeys(self.agents, 1.0)
        terms = dict.fromkeys(self.agents, done)
        infos = {a: {"t": self.t} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terms, dict.fromkeys(terms, False), infos


def test_sub_steps_without_any_choice_are_played_inside_one_call():
    env = DecisionStepsEnv(_NoChoiceUntil(k=3, length=6))
    obs, _ = env.reset()
    assert set(obs) == {"a", "b"}  # reset played sub-steps 1-3 (no choice) itself
    _, rewards, terms, _, infos = env.step({"a": 1})
    # The first step carries the 3 sub-steps played at reset plus its own.
    assert rewards == {"a": 4.0, "b": 4.0} and not terms["__all__"]
    assert infos["a"]["t"] == 4
    env = DecisionStepsEnv(_NoChoiceUntil(k=99, length=5))
    with pytest.raises(RuntimeError, match="before any agent had a choice"):
        env.reset()


def test_front_door_trains_with_decision_steps(tmp_path):
    """--decision-steps end to end: PPO trains on the wrapper (tiny budget), the run
    records it and counts its episodes."""
    import json

    from experiments.run import main

    out = tmp_path / "run"
    assert main(["--task", "basic_triage", "--output", str(out), "--train-iters", "1",
                 "--train-batch-size", "200", "--minibatch-size", "100",
                 "--num-env-runners", "0", "--envs-per-runner", "2", "--init", "none",
                 "--decision-steps", "--eval-episodes", "2", "--compare", "ppo"]) == 0  # fmt: skip
    state = json.loads((out / "checkpoint" / "train_state.json").read_text())
    assert state["settings"]["decision_steps"] is True
    row = state["history"][0]
    assert row["timesteps"] >= 200 and row["episodes"] >= 1
    # basic_triage: ~14 sub-steps per episode; decision steps can only shorten it.
    assert row["timesteps"] / row["episodes"] <= 20

"""One rollout loop and one episode-result record for every in-process evaluator."""

from __future__ import annotations

import gymnasium as gym

import envs  # noqa: F401  (registers the gym ids)
from agents import make_policy
from agents.ed_evaluation import evaluate_teams
from agents.evaluation import evaluate
from agents.results import ONE_ROLE_COLUMNS, RESULT_COLUMNS, TEAM_COLUMNS, bound_row
from agents.rollout import ONE_ROLE_AGENT, OneRoleEnv, rollout
from envs.ed.config import AGENTS


def test_a_gym_env_as_a_one_role_team_plays_the_same_episode():
    def direct(seed: int) -> list[tuple[int, float]]:
        env, policy = gym.make("edmarl/DynamicQueue-v0").unwrapped, make_policy("severity_greedy")
        policy.reset(seed)
        obs, _ = env.reset(seed=seed)
        out, done = [], False
        while not done:
            a = policy.act(obs)
            obs, r, done, _, _ = env.step(a)
            out.append((int(a), float(r)))
        return out

    env = OneRoleEnv(gym.make("edmarl/DynamicQueue-v0").unwrapped)
    played: list[tuple[int, float]] = []
    infos, steps = rollout(
        env, {ONE_ROLE_AGENT: make_policy("severity_greedy")}, 3,
        lambda t, before, actions, rewards, terms, infos: played.append(
            (int(actions[ONE_ROLE_AGENT]), float(rewards[ONE_ROLE_AGENT]))),
    )  # fmt: skip
    assert played == direct(3) and steps == len(played) and "score" in infos[ONE_ROLE_AGENT]
    assert env.agents == []  # the episode is over: the loop stopped on termination


def test_classic_and_team_rows_share_the_declared_columns():
    (classic,), _ = evaluate(["fifo"], "basic_triage", [10_000])
    assert tuple(classic)[: len(RESULT_COLUMNS) + 2] == (*RESULT_COLUMNS, *ONE_ROLE_COLUMNS)
    assert classic["pct_of_oracle"] == 100.0 * (classic["serve_reward"] / classic["oracle_value"])
    (team,) = evaluate_teams("basic_triage", {"heuristic": None}, [10_000])
    assert set(RESULT_COLUMNS) | set(TEAM_COLUMNS) <= set(team)
    assert [team[f"policy_{a}"] for a in AGENTS] == ["ed_nurse", "ed_pharmacist", "ed_consultant"]
    assert team["illegal_actions"] == sum(team[f"illegal_{a}"] for a in AGENTS)
    bound = bound_row("basic_triage", "ed", team, "oracle")
    assert bound["score"] == team["oracle_score"] and bound["normalised"] == 1.0
    assert set(bound) <= set(team) | {"policy"}

"""Evaluate ``ed`` teams (one policy per role) on the same episode seeds; every row
carries the clairvoyant bound of its episode (:func:`envs.ed.bound.solve`).

Example::

    rows = evaluate_teams("mass_casualty", {"heuristic": None,
                          "random nurse": "nurse=random"}, seeds=range(50))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from agents.base import Policy, PolicyContext
from agents.results import EpisodeResult, team_illegal_actions
from agents.roles import make_team, parse_team
from agents.rollout import rollout
from envs.ed.bound import solve
from envs.ed.config import AGENTS, EdConfig
from envs.ed.graders import grader_score, normalised_score
from envs.ed_triage_v0 import EdTriageParallelEnv

RANDOM_TEAM = "triage_nurse=random,pharmacist=random,consultant=random"
"""The team that anchors the normalised score at 0."""


def team_context(env: EdTriageParallelEnv) -> PolicyContext:
    return PolicyContext(
        task=env.task,
        ruleset="ed",
        n_slots=env.n_slots,
        presentation=env.presentation,
        config=env.config,
        task_for=env.task_for,
    )


def run_episode(
    env: EdTriageParallelEnv,
    team: Mapping[str, Policy],
    seed: int | None,
    log: list[dict] | None = None,
) -> dict:
    """Play one episode; return the final info of the consultant plus counters. With
    ``log``, append one row per agent and sub-step (observation, action mask, action,
    reward and its named terms; ``hint`` too when the env adds it): offline-RL, BC
    (:mod:`agents.rllib.imitation`) and SFT material."""

    def record(steps: int, before: dict, actions: dict, rewards: dict, terms: dict, infos: dict):
        for a, act in actions.items():
            info = infos[a]
            log.append(  # type: ignore[union-attr]
                {
                    "seed": seed, "agent": a, "parallel_step": steps,
                    "step": info["step"], "substep": info["substep"],
                    "observation": before[a]["observation"].tolist(),
                    "legal_actions": int(before[a]["action_mask"].sum()),
                    "action_mask": before[a]["action_mask"].astype(int).tolist(),
                    "action": int(act), "reward": float(rewards[a]),
                    "reward_terms": json.dumps(info["reward_terms"]),
                    "illegal_action": bool(info["illegal_action"]),
                    "terminated": bool(terms[a]),
                    # the role heuristic's action, when the env adds it (hints)
                    **({"hint": before[a]["hint"].tolist()} if "hint" in before[a] else {}),
                }
            )  # fmt: skip

    infos, steps = rollout(env, team, seed, record if log is not None else None)
    final = dict(infos["consultant"])
    final["parallel_steps"] = steps
    return final


def random_team_reward(env: EdTriageParallelEnv, seed: int | None) -> float:
    """Serve reward of :data:`RANDOM_TEAM` (seeded by ``seed``) on ``env``'s episode
    ``seed``: the 0 of the normalised score."""
    team = make_team(RANDOM_TEAM, team_context(env), seed)
    return run_episode(env, team, seed)["grader"]["cumulative_reward"]


def evaluate_teams(
    task: str,
    teams: Mapping[str, str | Mapping[str, str] | None],
    seeds: Iterable[int | None],
    config: EdConfig | None = None,
    reward_mode: str = "team",
    extra: Mapping[str, Mapping[str, Policy]] | None = None,
    on_episode: Callable[[dict], None] | None = None,
    step_log: list[dict] | None = None,
    version: str = "v0",
) -> list[dict]:
    """One row per (team, seed): score (v1: the share of the bound), grader score,
    returns, KPIs, the oracle's value, score and grader score.
    ``extra`` as in :func:`agents.roles.make_team` (e.g. trained modules); ``version``
    the env (:data:`envs.ed_triage_v1.ED_ENVS`)."""
    from envs.ed_triage_v1 import ED_ENVS

    if version not in ED_ENVS:
        raise ValueError(f"unknown ed env version {version!r}; choose one of {', '.join(ED_ENVS)}")
    seeds = list(seeds)
    env = ED_ENVS[version](task=task, config=config, reward_mode=reward_mode)
    ctx = team_context(env)
    rows = []
    baseline: dict = {}  # seed → the random team's serve reward (normalised score)

    def random_reward(seed: int | None) -> float:
        if seed not in baseline:
            baseline[seed] = random_team_reward(env, seed)
        return baseline[seed]

    for label, spec in teams.items():
        names = parse_team(spec)
        for seed in seeds:
            team = make_team(spec, ctx, seed, extra)
            log: list[dict] | None = [] if step_log is not None else None
            info = run_episode(env, team, seed, log)
            if step_log is not None and log is not None:
                step_log.extend({"task": env.task.name, "policy": label, **r} for r in log)
            bound = solve(env.task, seed, env.config)
            serve = info["grader"]["cumulative_reward"]
            if names == parse_team(RANDOM_TEAM):
                baseline.setdefault(seed, serve)
            r_random = random_reward(seed)
            # An LLM player replaces a failed answer by its fallback's legal action and
            # counts it (episode_fallbacks); those decisions count as illegal here too.
            fallbacks = {a: int(getattr(team[a], "episode_fallbacks", 0)) for a in AGENTS}
            row = EpisodeResult(
                task=env.task.name, ruleset=env.ruleset, seed=seed, policy=label,
                players={a: names[a] for a in AGENTS},
                score=info["score"], grader_score=info["grader_score"],
                episode_return=info["episode_return"], serve_reward=serve,
                served=info["grader"]["patients_served"],
                missed_emergencies=info["grader"]["missed_emergencies"],
                oracle_value=bound.value, oracle_score=bound.score,
                oracle_grader_score=grader_score(bound.grader), random_serve_reward=r_random,
                normalised=normalised_score(serve, r_random, bound.value),
                parallel_steps=info["parallel_steps"], kpis=info["kpis"], fallbacks=fallbacks,
                illegal_actions=team_illegal_actions(info["kpis"], fallbacks),
            ).to_row()  # fmt: skip
            rows.append(row)
            if on_episode is not None:
                on_episode(row)
    return rows

"""Evaluate ``ed`` teams (one policy per role) on the same episode seeds; every row
carries the clairvoyant bound of its episode (:func:`envs.ed.bound.solve`).

Example::

    rows = evaluate_teams("mass_casualty", {"heuristic": None,
                          "random nurse": "nurse=random"}, seeds=range(50))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from agents.base import Policy, PolicyContext
from agents.roles import make_team, parse_team
from envs.ed.bound import solve
from envs.ed.config import AGENTS, EdConfig
from envs.ed_triage_v0 import EdTriageParallelEnv


def team_context(env: EdTriageParallelEnv) -> PolicyContext:
    return PolicyContext(
        task=env.task, ruleset="ed", n_slots=env.n_slots, presentation=env.presentation
    )


def run_episode(env: EdTriageParallelEnv, team: Mapping[str, Policy], seed: int | None) -> dict:
    """Play one episode; return the final info of the consultant plus counters."""
    for p in team.values():
        p.reset(seed)
    obs, _ = env.reset(seed=seed) if seed is not None else env.reset(options={"episode_seed": None})
    steps = 0
    infos: dict = {}
    while env.agents:
        actions = {a: team[a].act(obs[a]) for a in env.agents}
        obs, _, _, _, infos = env.step(actions)
        steps += 1
    final = dict(infos["consultant"])
    final["parallel_steps"] = steps
    return final


def evaluate_teams(
    task: str,
    teams: Mapping[str, str | Mapping[str, str] | None],
    seeds: Iterable[int | None],
    config: EdConfig | None = None,
    reward_mode: str = "team",
    extra: Mapping[str, Mapping[str, Policy]] | None = None,
    on_episode: Callable[[dict], None] | None = None,
) -> list[dict]:
    """One row per (team, seed): score, returns, KPIs, oracle value and score.
    ``extra`` as in :func:`agents.roles.make_team` (e.g. trained modules)."""
    seeds = list(seeds)
    env = EdTriageParallelEnv(task=task, config=config, reward_mode=reward_mode)
    ctx = team_context(env)
    rows = []
    for label, spec in teams.items():
        names = parse_team(spec)
        for seed in seeds:
            team = make_team(spec, ctx, seed, extra)
            info = run_episode(env, team, seed)
            bound = solve(env.task, seed, env.config)
            serve = info["grader"]["cumulative_reward"]
            rows.append(
                {
                    "task": env.task.name, "ruleset": "ed", "seed": seed, "team": label,
                    **{f"policy_{a}": names[a] for a in AGENTS},
                    "score": info["score"], "episode_return": info["episode_return"],
                    "serve_reward": serve, "served": info["grader"]["patients_served"],
                    "missed_emergencies": info["grader"]["missed_emergencies"],
                    "oracle_value": bound.value, "oracle_score": bound.score,
                    "pct_of_oracle": 100.0 * serve / bound.value if bound.value else 100.0,
                    "parallel_steps": info["parallel_steps"],
                    **{k: v for k, v in info["kpis"].items()},
                }
            )  # fmt: skip
            row = rows[-1]
            # Columns shared with the single-agent results (SPEC §5).
            row["policy"] = label
            row["illegal_actions"] = sum(row[f"illegal_{a}"] for a in AGENTS)
            if on_episode is not None:
                on_episode(row)
    return rows

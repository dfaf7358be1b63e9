"""Evaluate policies on the same episode seeds and collect one row per episode.

Every policy plays the same seeds through the same Gymnasium env; the oracle's bound
for each seed is attached to every row, so results are always reported against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import gymnasium as gym

from agents.base import Policy, PolicyContext, make_policy
from agents.oracle import solve
from envs.gym_queue import GYM_IDS, QueueEnv
from envs.kpis import episode_kpis
from envs.tasks import get_task

RESULT_COLUMNS = (
    "task", "ruleset", "seed", "policy", "score", "episode_return", "serve_reward",
    "served", "missed_emergencies", "oracle_value", "oracle_score", "pct_of_oracle",
    "illegal_actions", "invalid_actions", "waits",
)  # fmt: skip
"""Leading columns of ``results.parquet``; the KPIs of :mod:`envs.kpis` follow."""


@dataclass
class EpisodeLog:
    """Per-step record of one evaluation episode (for ``episodes.parquet``)."""

    steps: list[dict] = field(default_factory=list)


_ENV_ID = {task: env_id for env_id, task in GYM_IDS.items()}


def _make_env(task: str, ruleset: str) -> QueueEnv:
    env = gym.make(_ENV_ID[get_task(task).name], ruleset=ruleset)
    return env.unwrapped  # type: ignore[return-value]


def evaluate(
    policies: Sequence[str],
    task: str,
    seeds: Iterable[int | None],
    ruleset: str = "classic",
    log_steps: bool = False,
    on_episode: Callable[[dict], None] | None = None,
    extra_policies: Mapping[str, Policy] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Play every policy on every seed; return (episode rows, step rows). Names are
    looked up in ``extra_policies`` (e.g. a trained module) first, then the registry."""
    seeds = list(seeds)
    env = _make_env(task, ruleset)
    ctx = PolicyContext(task=env.task, ruleset=ruleset, n_slots=env.n_slots)
    bounds = {s: solve(env.task.name, s, ruleset) for s in seeds}
    rows: list[dict] = []
    step_rows: list[dict] = []
    for name in policies:
        policy = (extra_policies or {}).get(name) or make_policy(name, context=ctx)
        for seed in seeds:
            policy.reset(seed)
            obs, _ = (
                env.reset(seed=seed)
                if seed is not None
                else env.reset(options={"episode_seed": None})
            )
            done = False
            ret, illegal, invalid, waits, t = 0.0, 0, 0, 0, 0
            while not done:
                mask = obs["action_mask"]
                a = policy.act(obs)
                if not (0 <= a < mask.shape[0]) or not mask[a]:
                    illegal += 1
                waits += a == env.wait_action
                obs, r, done, _, info = env.step(a)
                ret += float(r)
                invalid += "invalid_action" in info
                if log_steps:
                    step_rows.append(
                        {
                            "task": env.task.name, "ruleset": ruleset, "seed": seed,
                            "policy": name, "call": t, "step": env.state.step,
                            "action": int(a), "legal_actions": int(mask.sum()),
                            "reward": float(r), "queue_length": len(env.state.queue),
                        }
                    )  # fmt: skip
                t += 1
            # An LLM policy replaces a failed answer by its fallback's legal action and
            # counts it; those decisions are reported as illegal (0 for other policies).
            illegal += int(getattr(policy, "episode_fallbacks", 0))
            state = env.state
            serve_reward = sum(s.reward for s in state.served)
            bound = bounds[seed]
            row = {
                "task": env.task.name,
                "ruleset": ruleset,
                "seed": seed,
                "policy": name,
                "score": info["score"],
                "episode_return": ret,
                "serve_reward": serve_reward,
                "served": len(state.served),
                "missed_emergencies": state.missed_emergencies,
                "oracle_value": bound.value,
                "oracle_score": bound.score,
                "pct_of_oracle": 100.0 * (serve_reward / bound.value) if bound.value else 100.0,
                "illegal_actions": illegal,
                "invalid_actions": invalid,
                "waits": waits,
                **episode_kpis(state),
            }
            rows.append(row)
            if on_episode is not None:
                on_episode(row)
    return rows, step_rows

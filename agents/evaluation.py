"""Evaluate policies on the same episode seeds and collect one row per episode.

Every policy plays the same seeds through the same Gymnasium env, as a one-role team in
the shared rollout loop (:func:`agents.rollout.rollout`); the oracle's bound for each
seed is attached to every row (:class:`agents.results.EpisodeResult`), so results are
always reported against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import gymnasium as gym

from agents.base import Policy, PolicyContext, make_policy
from agents.oracle import solve
from agents.results import ONE_ROLE_COLUMNS, EpisodeResult
from agents.results import RESULT_COLUMNS as _CORE
from agents.rollout import ONE_ROLE_AGENT as AGENT
from agents.rollout import OneRoleEnv, rollout
from envs.gym_queue import GYM_IDS, QueueEnv
from envs.kpis import episode_kpis
from envs.tasks import get_task

RESULT_COLUMNS = (*_CORE, *ONE_ROLE_COLUMNS)
"""Leading columns of a classic ``results.parquet`` row (:mod:`agents.results`); the KPIs
of :mod:`envs.kpis` follow."""


@dataclass
class EpisodeLog:
    """Per-step record of one evaluation episode (for ``episodes.parquet``)."""

    steps: list[dict] = field(default_factory=list)


class _StepCounts:
    """The classic loop's per-step record: counters of one episode and, with ``log``, its
    step rows (``episodes.parquet``)."""

    def __init__(self, env: QueueEnv, keys: dict, log: list[dict] | None) -> None:
        self.env, self.keys, self.log = env, keys, log
        self.ret, self.illegal, self.invalid, self.waits = 0.0, 0, 0, 0

    def on_step(self, t: int, before: dict, actions: dict, rewards: dict, _terms, infos) -> None:
        mask, a, r = before[AGENT]["action_mask"], actions[AGENT], rewards[AGENT]
        if not (0 <= a < mask.shape[0]) or not mask[a]:
            self.illegal += 1
        self.waits += a == self.env.wait_action
        self.ret += float(r)
        self.invalid += "invalid_action" in infos[AGENT]
        if self.log is not None:
            state = self.env.state
            self.log.append({**self.keys, "call": t, "step": state.step, "action": int(a),
                             "legal_actions": int(mask.sum()), "reward": float(r),
                             "queue_length": len(state.queue)})  # fmt: skip


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
    team_env = OneRoleEnv(env, AGENT)
    ctx = PolicyContext(task=env.task, ruleset=ruleset, n_slots=env.n_slots)
    bounds = {s: solve(env.task.name, s, ruleset) for s in seeds}
    rows: list[dict] = []
    step_rows: list[dict] = []
    for name in policies:
        policy = (extra_policies or {}).get(name) or make_policy(name, context=ctx)
        for seed in seeds:
            log = step_rows if log_steps else None
            n = _StepCounts(env, {"task": env.task.name, "ruleset": ruleset, "seed": seed,
                                  "policy": name}, log)  # fmt: skip
            infos, _ = rollout(team_env, {AGENT: policy}, seed, n.on_step)
            state = env.state
            bound = bounds[seed]
            result = EpisodeResult(
                task=env.task.name, ruleset=ruleset, seed=seed, policy=name,
                score=infos[AGENT]["score"], episode_return=n.ret,
                serve_reward=sum(s.reward for s in state.served), served=len(state.served),
                missed_emergencies=state.missed_emergencies, oracle_value=bound.value,
                oracle_score=bound.score,
                # An LLM policy replaces a failed answer by its fallback's legal action and
                # counts it; those decisions are reported as illegal (0 for other policies).
                illegal_actions=n.illegal + int(getattr(policy, "episode_fallbacks", 0)),
                invalid_actions=n.invalid, waits=n.waits, kpis=episode_kpis(state),
            )  # fmt: skip
            row = result.to_row()
            rows.append(row)
            if on_episode is not None:
                on_episode(row)
    return rows, step_rows

"""Step rows (``episodes.parquet``) rebuilt from RLlib's episode objects, with the same
columns, order and values as our evaluation loops write them
(:func:`agents.evaluation.evaluate` for ``classic``, :func:`agents.ed_evaluation.run_episode`
for ``ed``), so that ``--save-episodes`` works with either evaluator.

An episode stores, per agent, T + 1 observations and infos and T actions and rewards:
step t's row reads the observation before the action (``observations[t]``) and the
info after it (``infos[t + 1]``). What an episode does not hold — the classic engine's
step and queue length, the ``ed`` parallel step an agent acted in — the evaluation envs
add to their infos under :data:`STEP_INFO`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

STEP_INFO = "rllib_eval_step"
"""Info key the evaluation envs add: ``classic``: ``{"step", "queue_length"}`` after
the step; ``ed``: ``{"parallel_step"}``, the index of the parallel step just played."""


class SeedList:
    """The episode seeds an evaluation env plays, in order, one per ``reset`` (None: the
    schedule as written); a reset past the end is an error. ``on_reset`` callbacks get
    each episode's seed before the env is reset (both rulesets' evaluation envs)."""

    def __init__(self, seeds: Iterable[int | None]) -> None:
        self.seeds = [None if s is None else int(s) for s in seeds]
        self.next_index = 0
        self.on_reset: list[Callable[[int | None], None]] = []

    def next(self) -> int | None:
        if self.next_index >= len(self.seeds):
            raise RuntimeError(
                f"all {len(self.seeds)} episode seeds played: sample at most "
                "len(episode_seeds) episodes from one env"
            )
        seed = self.seeds[self.next_index]
        self.next_index += 1
        for hook in self.on_reset:
            hook(seed)
        return seed


def _column(obs: Any, key: str) -> np.ndarray:
    return np.asarray(obs[key])


def classic_step_rows(episode: Any, keys: Mapping[str, Any]) -> list[dict]:
    """The classic loop's step rows of a finished ``SingleAgentEpisode``: ``keys`` (task,
    ruleset, seed, policy), then call, step, action, legal_actions, reward, queue_length."""
    obs = episode.get_observations()
    masks = _column(obs, "action_mask")
    actions = episode.get_actions()
    rewards = episode.get_rewards()
    infos = episode.get_infos()
    rows = []
    for t in range(len(episode)):
        after = infos[t + 1][STEP_INFO]
        rows.append({**keys, "call": t, "step": after["step"], "action": int(actions[t]),
                     "legal_actions": int(masks[t].sum()), "reward": float(rewards[t]),
                     "queue_length": after["queue_length"]})  # fmt: skip
    return rows


def ed_step_rows(
    episode: Any, seed: int | None, agents: Sequence[str], keys: Mapping[str, Any] | None = None
) -> list[dict]:
    """The ``ed`` loop's step rows (:func:`agents.ed_evaluation.run_episode`'s ``log``,
    prefixed with ``keys``, e.g. task and policy) of a finished ``MultiAgentEpisode``:
    one row per agent and parallel step, agents in ``agents`` order within a step. The
    evaluation env's ``hint``/``advice`` keys are not columns: the loop's env has none."""
    order = {a: i for i, a in enumerate(agents)}
    rows: list[tuple[int, int, dict]] = []
    for agent, sa in episode.agent_episodes.items():
        obs = sa.get_observations()
        observations, masks = _column(obs, "observation"), _column(obs, "action_mask")
        actions, rewards, infos = sa.get_actions(), sa.get_rewards(), sa.get_infos()
        last = len(sa) - 1
        for t in range(len(sa)):
            info = infos[t + 1]
            parallel_step = int(info[STEP_INFO]["parallel_step"])
            row = {
                **(keys or {}),
                "seed": seed, "agent": agent, "parallel_step": parallel_step,
                "step": info["step"], "substep": info["substep"],
                "observation": observations[t].tolist(),
                "legal_actions": int(masks[t].sum()),
                "action_mask": masks[t].astype(int).tolist(),
                "action": int(actions[t]), "reward": float(rewards[t]),
                "reward_terms": json.dumps(info["reward_terms"]),
                "illegal_action": bool(info["illegal_action"]),
                "terminated": bool(t == last and sa.is_terminated),
            }  # fmt: skip
            rows.append((parallel_step, order[agent], row))
    rows.sort(key=lambda r: r[:2])
    return [r for _, _, r in rows]


__all__ = ["STEP_INFO", "classic_step_rows", "ed_step_rows"]

"""The episode-result record: one evaluation episode, the one place that defines the
``results.parquet`` row (docs/spec.md §5) for every evaluator — the classic loop
(:mod:`agents.evaluation`), the ``ed`` loop (:mod:`agents.ed_evaluation`), RLlib's
EnvRunner (:mod:`agents.rllib.evaluation`) and the bound's own row
(:func:`bound_row`).

A one-role ruleset's row and a team ruleset's row share :data:`RESULT_COLUMNS`; a team
row adds the players, the grader score, the normalised score and per-agent fallbacks
(:data:`TEAM_COLUMNS`), a one-role row the invalid actions and waits. The KPIs are the
engine's ``episode_kpis`` (``envs.classic.kpis``, ``envs.ed.graders``), the triage
metrics :mod:`envs.clinical.triage_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RESULT_COLUMNS = (
    "task", "ruleset", "seed", "policy", "score", "episode_return", "serve_reward",
    "served", "missed_emergencies", "oracle_value", "oracle_score", "pct_of_oracle",
    "illegal_actions",
)  # fmt: skip
"""Columns every results row has (the shared core, docs/spec.md §5)."""
ONE_ROLE_COLUMNS = ("invalid_actions", "waits")
"""Added by one-role (classic) rows after :data:`RESULT_COLUMNS`; the KPIs follow."""
TEAM_COLUMNS = (
    "team", "grader_score", "oracle_grader_score", "random_serve_reward", "normalised",
    "parallel_steps",
)  # fmt: skip
"""Added by team rows, with ``policy_<agent>`` and ``fallbacks_<agent>`` per agent."""


@dataclass
class EpisodeResult:
    """One evaluation episode of one policy (or team) on one seed, against the
    clairvoyant bound of that seed. :meth:`to_row` is its ``results.parquet`` row."""

    task: str
    ruleset: str
    seed: int | None
    policy: str
    """The --compare label (a team spec's label for teams)."""
    score: float
    episode_return: float
    serve_reward: float
    served: int
    missed_emergencies: int
    oracle_value: float
    oracle_score: float
    illegal_actions: float
    kpis: Mapping[str, float] = field(default_factory=dict)
    # One-role rulesets.
    invalid_actions: int | None = None
    waits: int | None = None
    # Team rulesets.
    players: Mapping[str, str] | None = None
    """agent → the policy name playing it (None: a one-role ruleset)."""
    grader_score: float | None = None
    oracle_grader_score: float | None = None
    random_serve_reward: float | None = None
    normalised: float | None = None
    parallel_steps: int | None = None
    fallbacks: Mapping[str, int] = field(default_factory=dict)
    """agent → an LLM player's fallback decisions (counted in ``illegal_actions``)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Evaluator-specific columns after the policy (RLlib: ``evaluator``, its returns)."""

    @property
    def pct_of_oracle(self) -> float:
        """Σ served rewards as a % of the bound's (100 where the bound is 0)."""
        if not self.oracle_value:
            return 100.0
        # The one-role loop has always divided first; the last bits of the column stay.
        if self.players is None:
            return 100.0 * (self.serve_reward / self.oracle_value)
        return 100.0 * self.serve_reward / self.oracle_value

    def to_row(self) -> dict[str, Any]:
        """The ``results.parquet`` row (column order as written since the first release)."""
        if self.players is None:
            return {
                **{c: getattr(self, c) for c in (*RESULT_COLUMNS, *ONE_ROLE_COLUMNS)},
                **self.kpis,
            }
        return {
            "task": self.task, "ruleset": self.ruleset, "seed": self.seed, "team": self.policy,
            **{f"policy_{a}": name for a, name in self.players.items()},
            "score": self.score, "grader_score": self.grader_score,
            "episode_return": self.episode_return, "serve_reward": self.serve_reward,
            "served": self.served, "missed_emergencies": self.missed_emergencies,
            "oracle_value": self.oracle_value, "oracle_score": self.oracle_score,
            "oracle_grader_score": self.oracle_grader_score,
            "pct_of_oracle": self.pct_of_oracle,
            **({} if self.random_serve_reward is None else {
                "random_serve_reward": self.random_serve_reward, "normalised": self.normalised}),
            "parallel_steps": self.parallel_steps,
            **self.kpis,
            "policy": self.policy,
            **self.extra,
            **{f"fallbacks_{a}": int(self.fallbacks.get(a, 0)) for a in self.players},
            "illegal_actions": self.illegal_actions,
        }  # fmt: skip


def team_illegal_actions(kpis: Mapping[str, float], fallbacks: Mapping[str, int]) -> float:
    """A team's illegal decisions: the env's per-agent count plus the LLM players' fallbacks
    (a failed answer replaced by the fallback's legal action counts as illegal)."""
    return sum(kpis.get(f"illegal_{a}", 0) for a in fallbacks) + sum(fallbacks.values())


def bound_row(task: str, ruleset: str, played: Mapping[str, Any], label: str) -> dict:
    """The clairvoyant bound's own results row for the seed of the ``played`` row."""
    return {"task": task, "ruleset": ruleset, "seed": played["seed"], "policy": label,
            "score": played["oracle_score"], "serve_reward": played["oracle_value"],
            "grader_score": played["oracle_grader_score"],
            "oracle_value": played["oracle_value"], "oracle_score": played["oracle_score"],
            "pct_of_oracle": 100.0, "normalised": 1.0, "illegal_actions": 0}  # fmt: skip

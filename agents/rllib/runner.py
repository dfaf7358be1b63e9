"""RLlib's ``MultiAgentEnvRunner`` without two per-step costs of its bookkeeping.

Profiling a runner's ``sample()`` on mass_casualty (cProfile, 2,000 env steps, RLlib
2.60, ``experiments/bench_rllib.py`` for the figures) showed about a fifth of its time
in places that do the same work again and again; this runner is for the ``ed`` envs:

* **Step counts**: ``_increase_sampled_metrics`` logs six metrics per agent per env step
  (env, agent and module steps, each a window sum and a lifetime sum), ~14
  ``MetricsLogger.log_value`` calls per env step. Here the counts are added up in a
  dict and logged once per ``sample()`` call, with the same keys, reductions and
  totals.
* **Episodes made numpy again**: ``_sample`` converts every episode finished so far in
  the call to numpy after *every* env step (``to_numpy`` on each done episode, inside
  the step loop), so a call that finishes k episodes in T steps validates ~k·T/2
  episodes. A converted episode takes no more data, so converting it again only
  re-validates it; :func:`numpy_once` makes ``MultiAgentEpisode.to_numpy`` return at
  once for an episode whose agents are all converted already.

* **Observations deep-copied**: the vector env deep-copies every step's observation
  dicts (``SyncVectorMultiAgentEnv(copy=True)``) in case an env reuses its arrays; the
  ``ed`` envs build fresh arrays every step (``envs.ed.observation.encode_all``,
  ``envs.ed.state.masks``, the hints' one-hots), so the copy is turned off.

Everything else — the episodes, the actions, the metrics' values — is RLlib's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
)

_RLLIB_TO_NUMPY = MultiAgentEpisode.to_numpy


def _to_numpy_once(self: MultiAgentEpisode) -> MultiAgentEpisode:
    episodes = self.agent_episodes.values()
    if episodes and all(e.is_numpy for e in episodes):
        return self  # converted: it cannot have taken data since
    return _RLLIB_TO_NUMPY(self)


def numpy_once() -> None:
    """Make ``MultiAgentEpisode.to_numpy`` a no-op on converted episodes (this process)."""
    MultiAgentEpisode.to_numpy = _to_numpy_once


class LeanMultiAgentEnvRunner(MultiAgentEnvRunner):
    """``MultiAgentEnvRunner`` logging its step counts once per ``sample()`` call,
    converting each finished episode to numpy once and not deep-copying observations
    (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        numpy_once()
        self._counts: Counter = Counter()
        super().__init__(*args, **kwargs)

    def make_env(self) -> None:
        super().make_env()
        self.env.copy = False  # the ed envs' observations are fresh arrays every step

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().sample(*args, **kwargs)
        finally:
            self._log_counts()

    def _increase_sampled_metrics(self, num_steps: int, next_obs: dict, episode: Any) -> int:
        counts = self._counts
        counts[NUM_ENV_STEPS_SAMPLED] += num_steps
        if episode.is_done:
            counts[NUM_EPISODES] += 1
        for aid in next_obs:
            counts[(NUM_AGENT_STEPS_SAMPLED, str(aid))] += 1
            counts[(NUM_MODULE_STEPS_SAMPLED, episode.module_for(aid))] += 1
        return num_steps

    def _log_counts(self) -> None:
        """RLlib's six step metrics (and two episode ones) from this call's counts."""
        counts, self._counts = self._counts, Counter()
        log = self.metrics.log_value
        lifetime = {
            NUM_ENV_STEPS_SAMPLED: NUM_ENV_STEPS_SAMPLED_LIFETIME,
            NUM_EPISODES: NUM_EPISODES_LIFETIME,
            NUM_AGENT_STEPS_SAMPLED: NUM_AGENT_STEPS_SAMPLED_LIFETIME,
            NUM_MODULE_STEPS_SAMPLED: NUM_MODULE_STEPS_SAMPLED_LIFETIME,
        }
        for key, n in counts.items():
            name, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
            log((name, *rest) if rest else name, n, reduce="sum")
            throughput = {"with_throughput": True} if name == NUM_ENV_STEPS_SAMPLED else {}
            life = (lifetime[name], *rest) if rest else lifetime[name]
            log(life, n, reduce="lifetime_sum", **throughput)

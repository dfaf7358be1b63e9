"""PPO whose EnvRunners sample the next train batch while the learner trains on this one.

RLlib's PPO samples, then learns, in turn: while the learner (one torch thread in the
driver) runs its epochs, every EnvRunner waits. Here, as soon as a batch is collected,
the runners start sampling the next one with the weights they have, and the learner
trains meanwhile; the new weights reach the runners when that sample is done (Ray runs
an actor's calls in the order they were sent). So each batch is sampled by the policy
one update older than the one that trains on it — the lag of asynchronous PPO
(Sample Factory, APPO). The learner corrects for it
(:class:`agents.rllib.learner.ProximalPolicy`, set up by ``build_config``): PPO's ratio
and clip are taken against the policy at the start of the update, and each advantage
is weighted by that policy's probability of the action over the sampling policy's
(decoupled PPO), so the update is, in expectation, the on-policy step.

On a 2-core machine the learner and the sampling then share the cores instead of
leaving one idle for half of every iteration (docs/benchmarks/front_door_speed.md).

Also: the runners' connector states are gathered with each sample and merged and sent
back without waiting (RLlib's own per-iteration sync would block on the sample in
flight); the first iteration, and one after a restore, sample as PPO does; a batch that
falls short (a runner lost) is topped up with a synchronous sample. With no remote
EnvRunner it is RLlib's PPO.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.core import COMPONENT_ENV_TO_MODULE_CONNECTOR, COMPONENT_MODULE_TO_ENV_CONNECTOR
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

AHEAD_TAG = "sample_ahead"


def _sample_metrics_state(runner: Any) -> tuple[Any, dict, dict]:
    """One runner's sample (its rollout fragment on each of its envs), its metrics and its
    connector states: what PPO's sampling and RLlib's state sync would each ask for."""
    episodes = runner.sample()
    components = [COMPONENT_ENV_TO_MODULE_CONNECTOR, COMPONENT_MODULE_TO_ENV_CONNECTOR]
    return episodes, runner.get_metrics(), runner.get_state(components=components)


class SampleAheadPPO(PPO):
    """RLlib's PPO (new API stack) with sampling overlapped with learning (module
    docstring); built by :class:`SampleAheadPPOConfig`."""

    def setup(self, config: Any) -> None:
        super().setup(config)
        self._ahead_launched = False

    def _remote(self) -> bool:
        return (
            self.config.enable_env_runner_and_connector_v2
            and self.env_runner_group is not None
            and self.env_runner_group.num_remote_env_runners() > 0
        )

    def _launch(self) -> None:
        self.env_runner_group.foreach_env_runner_async(_sample_metrics_state, tag=AHEAD_TAG)
        self._ahead_launched = True

    def _collect(self) -> tuple[list, list[dict]]:
        """The batch in flight (or a new one, sampled now), topped up to the train batch."""
        if not self._ahead_launched:
            self._launch()
        results = self.env_runner_group.fetch_ready_async_reqs(tags=AHEAD_TAG, timeout_seconds=None)
        self._ahead_launched = False
        episodes, metrics, states = [], [], []
        for _, (eps, m, state) in results:
            episodes.extend(eps)
            metrics.append(m)
            states.append(state)
        if states:
            self.env_runner_group.sync_env_runner_states(
                config=self.config,
                connector_states=states,
                env_to_module=self.env_to_module_connector,
                module_to_env=self.module_to_env_connector,
            )
        missing = self.config.total_train_batch_size - sum(
            int(m.get(NUM_ENV_STEPS_SAMPLED, 0)) for m in metrics
        )
        if missing > 0:  # a runner failed or came back empty: sample the rest now
            more, more_metrics = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=missing,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
            episodes.extend(more)
            metrics.extend(more_metrics)
        return episodes, metrics

    def training_step(self) -> None:
        if not self._remote() or self.config.count_steps_by != "env_steps":
            return super().training_step()
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = self._collect()
            if not episodes:
                return
            self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        self._launch()  # the next batch, sampled while the learner trains on this one
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            trained = (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME)
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(trained, default=0),
                },
                num_epochs=self.config.num_epochs,
                minibatch_size=self.config.minibatch_size,
                shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            # Sent without waiting: each runner applies them after the sample in flight.
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0].keys()) - {ALL_MODULES},
                inference_only=True,
            )


class SampleAheadPPOConfig(PPOConfig):
    """``PPOConfig`` building :class:`SampleAheadPPO`, without RLlib's automatic
    connector-state sync after each iteration: it would ask every runner for its state
    and so wait for the sample in flight (the algorithm syncs with each sample instead,
    as RLlib's IMPALA does)."""

    def __init__(self, algo_class: Any = None) -> None:
        super().__init__(algo_class=algo_class or SampleAheadPPO)
        self._dont_auto_sync_env_runner_states = True

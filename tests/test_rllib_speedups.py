"""The training speed-ups of issue 18 change nothing they claim to keep:

* :class:`agents.rllib.modules.MaskedCategorical` is RLlib's categorical distribution
  (log-probabilities, entropy, KL, legal samples);
* :class:`agents.rllib.learner.LeanPPOTorchLearner` applies the same updates as RLlib's
  PPO learner, non-finite gradients included;
* :class:`agents.rllib.learner.IndexMiniBatches` yields RLlib's minibatches, row for row;
* :class:`agents.rllib.runner.LeanMultiAgentEnvRunner` samples the same episodes and
  reports the same step counts as RLlib's ``MultiAgentEnvRunner``;
* :class:`agents.rllib.teacher.TeacherLogits` gives the loss the teacher's own logits;
* :class:`agents.rllib.sample_ahead.SampleAheadPPO` trains each batch exactly one update
  after the weights that sampled it;
* turning off RLlib's action normalising and clipping (``DISCRETE_ACTIONS``) is safe:
  every env RLlib trains on has Discrete action spaces.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import tree

pytest.importorskip("ray.rllib")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical  # noqa: E402
from ray.rllib.utils.torch_utils import FLOAT_MIN  # noqa: E402

from agents.rllib.modules import MaskedCategorical  # noqa: E402
from agents.rllib.training import TrainSettings, build_config, init_ray, register_envs  # noqa: E402

TINY = dict(task="basic_triage", ruleset="ed", hints=True, ed_version="v1",
            train_batch_size=200, minibatch_size=100, envs_per_runner=2, num_epochs=2)  # fmt: skip
COUNTS = ("num_env_steps_sampled", "num_env_steps_sampled_lifetime", "num_episodes",
          "num_episodes_lifetime", "num_agent_steps_sampled", "num_agent_steps_sampled_lifetime",
          "num_module_steps_sampled", "num_module_steps_sampled_lifetime")  # fmt: skip


def test_masked_categorical_is_rllibs_categorical():
    gen = torch.Generator().manual_seed(0)
    legal = torch.rand(64, 41, generator=gen) > 0.7
    legal[:, -1] = True
    logits = torch.randn(64, 41, generator=gen) + torch.where(legal, 0.0, FLOAT_MIN)
    ours, ref = MaskedCategorical.from_logits(logits), TorchCategorical.from_logits(logits)
    actions = ref.sample()
    torch.testing.assert_close(ours.logp(actions), ref.logp(actions), rtol=0, atol=2e-6)
    torch.testing.assert_close(ours.entropy(), ref.entropy(), rtol=0, atol=2e-6)
    other = TorchCategorical.from_logits(logits + torch.randn(64, 41, generator=gen))
    torch.testing.assert_close(ours.kl(other), ref.kl(other), rtol=0, atol=2e-6)
    for _ in range(20):  # never an illegal action
        assert legal.gather(1, ours.sample()[:, None]).all()


def test_masked_categorical_samples_the_categorical_distribution():
    """The Gumbel-max draw: each action's frequency over 40,000 draws within 5 standard
    errors of its probability; illegal actions never drawn; RLlib's shapes and dtype."""
    gen = torch.Generator().manual_seed(5)
    legal = torch.rand(3, 12, generator=gen) > 0.5
    legal[:, -1] = True
    logits = 2 * torch.randn(3, 12, generator=gen) + torch.where(legal, 0.0, FLOAT_MIN)
    probs = torch.softmax(logits, -1)
    torch.manual_seed(0)
    n = 40_000
    draws = MaskedCategorical.from_logits(logits.repeat(n, 1)).sample().reshape(n, 3)
    assert draws.dtype == torch.int64
    freq = torch.nn.functional.one_hot(draws, 12).double().mean(0)
    assert (freq[~legal] == 0).all()
    se = (probs * (1 - probs) / n).sqrt()
    assert ((freq - probs).abs() <= 5 * se + 1e-9).all()
    one = MaskedCategorical.from_logits(logits[0]).sample()
    assert one.shape == () and legal[0, one]
    assert MaskedCategorical.from_logits(logits).sample(sample_shape=(4,)).shape == (4, 3)


@pytest.mark.parametrize("ruleset", ["classic", "ed"])
def test_every_training_env_has_discrete_actions(ruleset):
    import gymnasium as gym

    from agents.rllib.training import DISCRETE_ACTIONS, _ed_env_creator, _env_creator
    from envs.tasks import TASKS

    assert DISCRETE_ACTIONS == {"normalize_actions": False, "clip_actions": False}
    for task in TASKS:
        if ruleset == "classic":
            spaces = [_env_creator({"task": task, "ruleset": "classic"}).action_space]
        else:
            env = _ed_env_creator({"task": task, "hints": True, "ed_version": "v1"})
            spaces = [env.get_action_space(a) for a in env.get_agent_ids()]
        assert spaces and all(isinstance(sp, gym.spaces.Discrete) for sp in spaces), task


def _learner(s: TrainSettings, learner_class=None):
    config = build_config(s)
    if learner_class is not None:
        config = config.learners(learner_class=learner_class)
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    runner = MultiAgentEnvRunner(config=config)
    env = runner.env.envs[0].unwrapped
    spaces = {a: (env.get_observation_space(a), env.get_action_space(a)) for a in env.agents}
    runner.stop()
    return config.build_learner(spaces=spaces)


def test_lean_learner_applies_rllibs_updates_nonfinite_gradients_included():
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    from agents.rllib.learner import LeanPPOTorchLearner

    register_envs()
    s = TrainSettings(num_env_runners=0, **TINY)
    lean, ref = _learner(s), _learner(s, PPOTorchLearner)
    assert isinstance(lean, LeanPPOTorchLearner) and not isinstance(ref, LeanPPOTorchLearner)
    ref.module.set_state(lean.module.get_state())
    gen = torch.Generator().manual_seed(1)
    for step in range(3):  # finite, then a nan and an inf in one module's gradients
        grads = {pid: torch.randn(p.shape, generator=gen) for pid, p in lean._params.items()}
        if step > 0:
            first, second = list(grads)[:2]
            grads[first].view(-1)[0] = float("nan")
            grads[second].view(-1)[-1] = float("inf")
        pairs = zip(lean._params, ref._params, strict=True)
        lean.apply_gradients({k: v.clone() for k, v in grads.items()})
        ref.apply_gradients({ref_pid: grads[pid].clone() for pid, ref_pid in pairs})
        for (_, a), (_, b) in zip(lean._params.items(), ref._params.items(), strict=True):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_lean_learner_builds_rllibs_train_batch_without_autograd():
    """The learner connectors (GAE's value forward included) run under no_grad and
    produce RLlib's batch, value for value."""
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
    from ray.rllib.connectors.connector_v2 import ConnectorV2
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    register_envs()
    s = TrainSettings(num_env_runners=0, **TINY)
    lean, ref = _learner(s), _learner(s, PPOTorchLearner)
    ref.module.set_state(lean.module.get_state())
    runner = MultiAgentEnvRunner(config=build_config(s))
    episodes = runner.sample(num_timesteps=120)
    runner.stop()
    seen = []

    class Probe(ConnectorV2):
        def __call__(self, *, batch, **kwargs):
            seen.append(torch.is_grad_enabled())
            return batch

    lean._learner_connector.append(Probe())
    batches = [
        learner._make_batch_if_necessary(TrainingData(episodes=copy.deepcopy(episodes)))
        for learner in (lean, ref)
    ]
    assert seen == [False]
    (mine, theirs) = (b.policy_batches for b in batches)
    assert set(mine) == set(theirs) and mine
    for mid, b in mine.items():
        assert set(b.keys()) == set(theirs[mid].keys())
        for key in ("advantages", "value_targets", Columns.ACTIONS):
            torch.testing.assert_close(b[key], theirs[mid][key], rtol=0, atol=1e-6)
            assert not b[key].requires_grad


@pytest.mark.parametrize("total", [0, 7])
def test_index_minibatches_are_rllibs_minibatches(total):
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
    from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

    from agents.rllib.learner import IndexMiniBatches

    def module_batch(n: int, rng: np.random.Generator) -> SampleBatch:
        obs = {"observation": torch.from_numpy(rng.normal(size=(n, 5))), "mask": np.arange(n) % 3}
        adv = torch.from_numpy(rng.normal(size=n).astype(np.float32))
        return SampleBatch({"obs": obs, "actions": torch.arange(n), "adv": adv})

    sizes = {"nurse": 23, "consultant": 61, "pharmacist": 40}  # not multiples of 16
    seen = []
    for cls in (MiniBatchCyclicIterator, IndexMiniBatches):
        rng = np.random.default_rng(3)
        batch = MultiAgentBatch({m: module_batch(n, rng) for m, n in sizes.items()}, 100)
        np.random.seed(11)
        it = cls(batch, num_epochs=3, minibatch_size=16, num_total_minibatches=total)
        seen.append([{m: dict(b) for m, b in mb.policy_batches.items()} for mb in it])
    ref, ours = seen
    assert len(ours) == len(ref) == (total or 12)  # 61 rows × 3 epochs / 16
    for a, b in zip(ours, ref, strict=True):
        assert a.keys() == b.keys()
        for m in a:
            flat_a, flat_b = (tree.flatten(x[m]) for x in (a, b))
            assert len(flat_a) == len(flat_b) == 4 and len(a[m]["actions"]) == 16
            for x, y in zip(flat_a, flat_b, strict=True):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _counts(metrics: dict) -> dict:
    return {k: metrics[k] for k in COUNTS if k in metrics}


def test_lean_runner_samples_rllibs_episodes_and_counts():
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from agents.rllib.runner import LeanMultiAgentEnvRunner

    register_envs()
    config = build_config(TrainSettings(num_env_runners=0, **TINY))
    played = {}
    for cls in (MultiAgentEnvRunner, LeanMultiAgentEnvRunner):
        runner = cls(config=config)
        episodes = runner.sample(num_timesteps=150) + runner.sample(num_timesteps=60)
        played[cls] = episodes, _counts(runner.get_metrics())
        runner.stop()
    (ref_eps, ref_counts), (eps, counts) = played.values()
    assert counts == ref_counts and counts["num_episodes"] >= 1
    assert counts["num_env_steps_sampled"] >= 210
    assert len(eps) == len(ref_eps)
    for ep, ref in zip(eps, ref_eps, strict=True):
        assert ep.is_done == ref.is_done and set(ep.agent_episodes) == set(ref.agent_episodes)
        for agent, sa in ep.agent_episodes.items():
            other = ref.agent_episodes[agent]
            np.testing.assert_array_equal(sa.get_actions(), other.get_actions())
            np.testing.assert_array_equal(sa.get_rewards(), other.get_rewards())
            for key, obs in sa.get_observations().items():
                np.testing.assert_array_equal(obs, other.get_observations()[key])


def test_numpy_once_leaves_converted_episodes_alone():
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    from agents.rllib.runner import numpy_once

    numpy_once()
    ep = MultiAgentEpisode()
    ep.add_env_reset(observations={"a": 0}, infos={"a": {}})
    ep.add_env_step(observations={"a": 1}, actions={"a": 0}, rewards={"a": 1.0})
    assert not ep.is_numpy
    assert ep.to_numpy() is ep and ep.is_numpy
    before = ep.agent_episodes["a"].observations.data
    assert ep.to_numpy() is ep and ep.agent_episodes["a"].observations.data is before


def test_teacher_logits_column_is_the_teachers_forward_pass(tmp_path):
    from agents.rllib.teacher import (
        TEACHER_NEG_ENTROPY,
        TEACHER_PROBS,
        TeacherLogits,
        teacher_target,
        teacher_training,
    )

    register_envs()
    s = TrainSettings(num_env_runners=0, teacher_coeff=1.0, **TINY)
    config = build_config(s).learners(**teacher_training(s, None))
    # The clone the teacher reads: this run's initial modules, saved as the clone is.
    learner = _learner(s)
    for mid in learner.module.keys():
        learner.module[mid].save_to_path(str(tmp_path / mid))
    config.learner_config_dict["teacher"]["path"] = str(tmp_path)
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    runner = MultiAgentEnvRunner(config=config)
    env = runner.env.envs[0].unwrapped
    spaces = {a: (env.get_observation_space(a), env.get_action_space(a)) for a in env.agents}
    episodes = runner.sample(num_timesteps=120)
    runner.stop()
    teacher_learner = config.build_learner(spaces=spaces)
    assert any(isinstance(c, TeacherLogits) for c in teacher_learner._learner_connector.connectors)
    batch = teacher_learner._learner_connector(
        rl_module=teacher_learner.module, batch={}, episodes=episodes,
        shared_data={}, metrics=teacher_learner.metrics,
    )  # fmt: skip
    for mid, teacher in teacher_learner.teachers.items():
        with torch.no_grad():
            ref = teacher.forward_train({Columns.OBS: batch[mid][Columns.OBS]})
        p, neg_entropy = teacher_target(ref[Columns.ACTION_DIST_INPUTS])
        torch.testing.assert_close(batch[mid][TEACHER_PROBS], p, rtol=0, atol=0)
        torch.testing.assert_close(batch[mid][TEACHER_NEG_ENTROPY], neg_entropy, rtol=0, atol=0)
    # A decayed coefficient: no column, no teacher pass.
    for sched in teacher_learner.teacher_schedulers.values():
        sched.update(timestep=10**9)
    batch = teacher_learner._learner_connector(
        rl_module=teacher_learner.module, batch={}, episodes=episodes,
        shared_data={}, metrics=teacher_learner.metrics,
    )  # fmt: skip
    assert all(TEACHER_PROBS not in b and TEACHER_NEG_ENTROPY not in b for b in batch.values())


def _logp(module, state: dict, sa_episode) -> np.ndarray:
    """Log-probabilities of an agent's sampled actions under module weights ``state``."""
    module = copy.deepcopy(module)
    module.set_state(state)
    obs = {k: torch.as_tensor(np.asarray(v)[:-1]) for k, v in sa_episode.get_observations().items()}
    with torch.no_grad():
        logits = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    dist = MaskedCategorical.from_logits(logits)
    return dist.logp(torch.as_tensor(sa_episode.get_actions())).numpy()


def test_sample_ahead_trains_each_batch_one_update_after_its_sampling_weights():
    import ray

    from agents.rllib.sample_ahead import SampleAheadPPO

    init_ray(None)
    register_envs()
    s = TrainSettings(num_env_runners=1, sample_ahead=True, **TINY)
    algo = build_config(s).build_algo()
    assert isinstance(algo, SampleAheadPPO)
    learner = algo.learner_group._learner
    seen: list[tuple[list, dict]] = []  # (episodes, the learner's weights) per update
    update = algo.learner_group.update

    def recording_update(*args, **kwargs):
        weights = {m: copy.deepcopy(learner.module[m].get_state()) for m in learner.module.keys()}
        # A copy: PPO's learner connector appends a bootstrap step to each episode.
        seen.append((copy.deepcopy(kwargs["episodes"]), weights))
        return update(*args, **kwargs)

    algo.learner_group.update = recording_update
    try:
        steps = [algo.train()["env_runners"]["num_env_steps_sampled_lifetime"] for _ in range(3)]
    finally:
        algo.stop()
        ray.shutdown()
    assert steps[0] >= 200 and steps[1] - steps[0] >= 200 and steps[2] - steps[1] >= 200
    # Batch 1 (sampled before any update) and batch 2 (sampled while update 1 ran) come
    # from the initial weights; batch 3 from the weights after update 1 — its logps
    # match those, not the ones it is trained from (after update 2).
    expect = {0: 0, 1: 0, 2: 1}
    for k, (episodes, _) in enumerate(seen):
        sampler, trainer = seen[expect[k]][1], seen[k][1]
        gaps, lags = [], []
        for ep in episodes:
            for agent, sa in ep.agent_episodes.items():
                if len(sa) == 0:
                    continue
                mid = ep.module_for(agent)
                stored = np.asarray(sa.get_extra_model_outputs(Columns.ACTION_LOGP))
                gaps.append(np.abs(_logp(learner.module[mid], sampler[mid], sa) - stored).max())
                lags.append(np.abs(_logp(learner.module[mid], trainer[mid], sa) - stored).max())
        assert max(gaps) < 1e-4, (k, max(gaps))
        if k == 2:
            assert max(lags) > 1e-3  # trained one update after the weights that sampled it


def test_proximal_policy_reweights_advantages_and_takes_the_current_logps():
    """With sample-ahead the learner's connector puts the current module's log-probs in
    the batch and weights each advantage by π_current / π_sampling (truncated)."""
    from ray.rllib.core import COMPONENT_RL_MODULE
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
    from ray.rllib.evaluation.postprocessing import Postprocessing

    from agents.rllib.learner import IS_CAP, PROXIMAL_KEY, ProximalPolicy

    register_envs()
    config = build_config(TrainSettings(num_env_runners=0, **TINY))
    runner = MultiAgentEnvRunner(config=config)
    env = runner.env.envs[0].unwrapped
    spaces = {a: (env.get_observation_space(a), env.get_action_space(a)) for a in env.agents}
    episodes = runner.sample(num_timesteps=120)
    sampling = runner.get_state(components=COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE]
    runner.stop()
    plain = config.build_learner(spaces=spaces)
    proximal = config.copy(copy_frozen=False).learners(learner_config_dict={PROXIMAL_KEY: True})
    proximal = proximal.build_learner(spaces=spaces)
    assert any(isinstance(c, ProximalPolicy) for c in proximal._learner_connector.connectors)
    assert not any(isinstance(c, ProximalPolicy) for c in plain._learner_connector.connectors)

    def batches(perturb: float) -> tuple[dict, dict]:
        out = []
        for learner in (plain, proximal):
            learner.module.set_state(sampling)  # the weights that sampled the episodes
            gen = torch.Generator().manual_seed(5)
            with torch.no_grad():
                for mid in sorted(learner.module.keys()):
                    for p in learner.module[mid].parameters():
                        p.add_(perturb * torch.randn(p.shape, generator=gen))
            out.append(learner._learner_connector(
                rl_module=learner.module, batch={}, episodes=copy.deepcopy(episodes),
                shared_data={}, metrics=learner.metrics))  # fmt: skip
        return out[0], out[1]

    for perturb in (0.0, 0.05):
        ref, got = batches(perturb)
        for mid, b in got.items():
            live = b[Columns.LOSS_MASK].bool()
            module = proximal.module[mid]
            with torch.no_grad():
                logits = module.forward_train({Columns.OBS: b[Columns.OBS]})
            logp = MaskedCategorical.from_logits(logits[Columns.ACTION_DIST_INPUTS]).logp(
                b[Columns.ACTIONS]
            )
            torch.testing.assert_close(b[Columns.ACTION_LOGP][live], logp[live])
            weight = torch.exp(logp - ref[mid][Columns.ACTION_LOGP]).clamp(max=IS_CAP)
            if perturb == 0.0:  # the weights that sampled: weight 1, advantages unchanged
                torch.testing.assert_close(weight[live], torch.ones_like(weight[live]))
            else:
                assert (weight[live] - 1).abs().max() > 1e-3
            torch.testing.assert_close(
                b[Postprocessing.ADVANTAGES][live],
                ref[mid][Postprocessing.ADVANTAGES][live] * weight[live],
            )

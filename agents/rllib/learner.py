"""PPO's torch learner with exact speed-ups for small modules on a CPU.

A learner update of the ``ed`` team (three slot scorers, ~130 parameter tensors) spent
~15 % of its time outside the forward and backward passes (``experiments/
bench_rllib.py``, cProfile of ``LearnerGroup.update``):

* RLlib checks every gradient tensor for nan/inf twice per update, one small op each
  (``TorchLearner.apply_gradients``). Here one check runs on all of them at once; only
  when it finds a non-finite value does RLlib's own per-tensor path run (zeroing or
  skipping, as configured), so the outcome is the same.
* RLlib builds ``torch.optim.Adam(params)``, which on a CPU takes torch's per-tensor
  loop; ``foreach=True`` runs the same update as a few batched ops.
* RLlib's learner connectors run with autograd on, so GAE's value forward on the whole
  train batch records a graph that is never used; here they run under ``no_grad``.
* RLlib's minibatch iterator reorders every column of a module's whole train batch
  when it starts an epoch (``SampleBatch.shuffle``) and cuts each minibatch out of it
  with slices and a concatenation (~9 % of an update, py-spy). :class:`IndexMiniBatches`
  keeps the order as an index array instead — the same ``np.random.permutation`` calls
  in the same order — and gathers each minibatch's rows once: the same minibatches.

With :mod:`agents.rllib.sample_ahead` (``learner_config_dict[PROXIMAL_KEY]``) it also
corrects for the batch's one update of lag (:class:`ProximalPolicy`). Everything else is
RLlib's ``PPOTorchLearner``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

PROXIMAL_KEY = "proximal"
"""``learner_config_dict`` key: True adds :class:`ProximalPolicy` to the learner."""
IS_CAP = 2.0
"""Truncation of the importance weight π_proximal / π_behaviour (V-trace-style
truncation bounds the variance; with one update of lag the weights stay near 1)."""


class ProximalPolicy(ConnectorV2):
    """Learner connector piece for batches sampled one update behind (decoupled PPO:
    Hilton et al. 2021, "Batch size-invariance for policy optimization"). PPO's ratio and
    clip are taken against the policy at the start of this update (the *proximal*
    policy) instead of the older one that sampled the batch, and each advantage is
    weighted by π_proximal(a) / π_behaviour(a) (truncated at :data:`IS_CAP`), so the
    update is, in expectation, the on-policy PPO step from the current weights. It
    replaces the batch's ``action_logp`` and ``action_dist_inputs`` (the PPO loss and
    its KL term read them) with the current module's, once per update."""

    def __call__(self, *, rl_module: Any, batch: dict, episodes: Any, **kwargs: Any) -> Any:
        for module_id, b in batch.items():
            if module_id not in rl_module or Postprocessing.ADVANTAGES not in b:
                continue
            module = rl_module[module_id].unwrapped()
            with torch.no_grad():
                logits = module.forward_train({Columns.OBS: b[Columns.OBS]})
                logits = logits[Columns.ACTION_DIST_INPUTS]
                dist = module.get_train_action_dist_cls().from_logits(logits)
                logp = dist.logp(b[Columns.ACTIONS])
                # The padding step PPO adds to each episode (loss-masked) may hold an
                # illegal dummy action: exp(-inf)/nan become 0, never used.
                weight = torch.exp(logp - b[Columns.ACTION_LOGP]).nan_to_num(0.0, IS_CAP)
            b[Postprocessing.ADVANTAGES] = b[Postprocessing.ADVANTAGES] * weight.clamp(max=IS_CAP)
            b[Columns.ACTION_LOGP] = logp
            b[Columns.ACTION_DIST_INPUTS] = logits
        return batch


class IndexMiniBatches(MiniBatchCyclicIterator):
    """RLlib's ``MiniBatchCyclicIterator`` (each module's batch cycled through in
    minibatches of ``minibatch_size`` rows until every module has covered ``num_epochs``
    epochs, reshuffled at each wrap-around) with the order kept as indices; the
    minibatches are the same, row for row, given numpy's global random state. Batches
    with sequences (``seq_lens``) or non-array columns take RLlib's own path."""

    def __iter__(self):
        batches = self._batch.policy_batches
        if not all(_plain(b) for b in batches.values()):
            yield from super().__iter__()
            return
        order = {mid: np.arange(len(b)) for mid, b in batches.items()}
        while self._more():
            minibatch = {}
            for mid, batch in batches.items():
                n = len(batch)
                if n == 0:
                    raise ValueError(f"The batch for module_id {mid} is empty")
                start, need, parts = self._start[mid], self._minibatch_size, []
                while start + need >= n:  # to the end, then around (RLlib's cycle)
                    parts.append(order[mid][start:])
                    need -= n - start
                    start = 0
                    self._num_covered_epochs[mid] += 1
                    if self._shuffle_batch_per_epoch:
                        order[mid] = order[mid][np.random.permutation(n)]
                end = start + need
                if end > start:
                    parts.append(order[mid][start:end])
                rows = np.concatenate(parts)
                minibatch[mid] = _rows(batch, rows)
                self._start[mid] = end
            yield MultiAgentBatch(minibatch, len(self._batch))
            self._minibatch_count += 1

    def _more(self) -> bool:
        """RLlib's loop condition: every module covered ``num_epochs`` epochs, or the
        fixed number of minibatches reached when one is given."""
        if self._num_total_minibatches > 0:
            return self._minibatch_count < self._num_total_minibatches
        return min(self._num_covered_epochs.values()) < self._num_epochs


def _plain(batch: SampleBatch) -> bool:
    """No sequences and only array columns (nested dicts of them allowed)."""
    if batch.get(SampleBatch.SEQ_LENS) is not None or batch._slice_seq_lens_in_B:
        return False
    return all(isinstance(v, torch.Tensor | np.ndarray) for v in tree.flatten(dict(batch)))


def _rows(batch: SampleBatch, rows: np.ndarray) -> SampleBatch:
    index = torch.from_numpy(rows)

    def take(v: Any) -> Any:
        return v[index.to(v.device)] if isinstance(v, torch.Tensor) else v[rows]

    return SampleBatch(
        tree.map_structure(take, dict(batch)),
        _is_training=batch.is_training,
        _time_major=batch.time_major,
        _num_grad_updates=batch.num_grad_updates,
    )


class LeanPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPO torch learner: Adam's foreach update, one finiteness check and
    :class:`IndexMiniBatches` (and the proximal-policy correction when configured)."""

    def build(self) -> None:
        super().build()
        proximal = (self.config.learner_config_dict or {}).get(PROXIMAL_KEY)
        if proximal and self._learner_connector is not None:
            self._learner_connector.append(ProximalPolicy())

    def _create_iterator_if_necessary(self, **kwargs: Any) -> Any:
        it = super()._create_iterator_if_necessary(**kwargs)
        if type(it) is not MiniBatchCyclicIterator:
            return it
        return IndexMiniBatches(
            it._batch,
            num_epochs=it._num_epochs,
            minibatch_size=it._minibatch_size,
            shuffle_batch_per_epoch=it._shuffle_batch_per_epoch,
            num_total_minibatches=it._num_total_minibatches,
        )

    def _make_batch_if_necessary(self, training_data: Any) -> Any:
        # The learner connectors only prepare data (GAE's value predictions, the
        # proximal policy's logits): without autograd, RLlib's GAE forward on the whole
        # batch stops recording a graph that nothing differentiates. Same values.
        with torch.no_grad():
            return super()._make_batch_if_necessary(training_data)

    def configure_optimizers_for_module(self, module_id: Any, config: Any = None) -> None:
        params = self.get_parameters(self._module[module_id])
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, foreach=True),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def apply_gradients(self, gradients_dict: dict) -> None:
        grads = [g.reshape(-1) for g in gradients_dict.values() if g is not None]
        plain = self._grad_scalers is None and self._lr_scheduler_classes is None
        if not (plain and grads and bool(torch.isfinite(torch.cat(grads)).all())):
            return super().apply_gradients(gradients_dict)
        # All finite: RLlib's loop would set each gradient as is and step every optimizer.
        for pid, grad in gradients_dict.items():
            self._params[pid].grad = grad
        for module_id, names in self._module_optimizers.items():
            for name in names:
                self.get_optimizer(module_id, name).step()

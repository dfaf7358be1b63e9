"""PPO's torch learner with two exact speed-ups for small modules on a CPU.

A learner update of the ``ed`` team (three slot scorers, ~130 parameter tensors) spent
~15 % of its time outside the forward and backward passes (``experiments/
bench_rllib.py``, cProfile of ``LearnerGroup.update``):

* RLlib checks every gradient tensor for nan/inf twice per update, one small op each
  (``TorchLearner.apply_gradients``). Here one check runs on all of them at once; only
  when it finds a non-finite value does RLlib's own per-tensor path run (zeroing or
  skipping, as configured), so the outcome is the same.
* RLlib builds ``torch.optim.Adam(params)``, which on a CPU takes torch's per-tensor
  loop; ``foreach=True`` runs the same update as a few batched ops.

With :mod:`agents.rllib.sample_ahead` (``learner_config_dict[PROXIMAL_KEY]``) it also
corrects for the batch's one update of lag (:class:`ProximalPolicy`). Everything else is
RLlib's ``PPOTorchLearner``.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

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


class LeanPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPO torch learner: Adam's foreach update and one finiteness check (and the
    proximal-policy correction when configured)."""

    def build(self) -> None:
        super().build()
        proximal = (self.config.learner_config_dict or {}).get(PROXIMAL_KEY)
        if proximal and self._learner_connector is not None:
            self._learner_connector.append(ProximalPolicy())

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

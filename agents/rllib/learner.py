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

Everything else is RLlib's ``PPOTorchLearner``.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner


class LeanPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPO torch learner: Adam's foreach update and one finiteness check."""

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

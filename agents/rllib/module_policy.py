"""A trained RLModule as a :class:`agents.base.Policy`: greedy play in our evaluation
loop, with the role heuristic's hint recomputed for modules trained with hints."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Observation, Policy, PolicyContext


class ModulePolicy(Policy):
    """A trained RLModule on the shared Policy interface (greedy: argmax of the masked
    logits), so it plays the same seeds in the same evaluation loop as everything else.

    A module trained with hints (``module.hints``) needs its role (``agent``) and the
    env's :class:`PolicyContext` (:meth:`bind`, done by :func:`agents.roles.make_team`)
    to compute the role heuristic's hint, as the training env did."""

    def __init__(self, module: Any, name: str = "ppo", agent: str | None = None) -> None:
        super().__init__(None)
        self.module = module
        self.name = name
        self.agent = agent
        self.hinter: Policy | None = None
        if getattr(module, "hints", False) and agent is None:
            raise ValueError("this module was trained with hints: give ModulePolicy its agent")

    def bind(self, context: PolicyContext) -> None:
        """Play in the env described by ``context`` (builds the hint heuristic)."""
        self.context = context
        if getattr(self.module, "hints", False):
            from agents.rllib.hints import role_heuristic

            self.hinter = role_heuristic(self.agent, context)

    def reset(self, seed: int | None = None) -> None:
        if self.hinter is not None:
            self.hinter.reset(seed)

    def act_vec(self, observations: Observation) -> np.ndarray:
        import torch
        from ray.rllib.core.columns import Columns

        observations = dict(observations)
        if getattr(self.module, "hints", False):
            observations["hint"] = self._hints(observations)
        batch = {Columns.OBS: {k: torch.as_tensor(np.asarray(v)) for k, v in observations.items()}}
        with torch.no_grad():
            logits = self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        return logits.argmax(-1).cpu().numpy().astype(np.int64)

    def act(self, observation: Observation) -> int:
        return int(self.act_vec({k: np.asarray(v)[None] for k, v in observation.items()})[0])

    def _hints(self, observations: Observation) -> np.ndarray:
        from agents.rllib.hints import one_hot

        if self.hinter is None:
            raise RuntimeError("a module trained with hints must be bound to its env first "
                               "(ModulePolicy.bind(context); make_team does it)")  # fmt: skip
        masks = np.asarray(observations["action_mask"])
        obs = np.asarray(observations["observation"])
        return np.stack(
            [
                one_hot(self.hinter.act({"observation": o, "action_mask": m}), m.shape[0])
                for o, m in zip(obs, masks, strict=True)
            ]
        )

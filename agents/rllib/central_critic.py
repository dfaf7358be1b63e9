"""MAPPO-style centralised critic for the ``ed`` team (``run.py --critic central``).

Training: :class:`GlobalStateEnv` adds a ``state`` key to every agent's observation —
the concatenation of all three roles' ``observation`` vectors (nurse, pharmacist,
consultant, :data:`envs.ed.config.AGENTS` order), the same vector for every agent.
:class:`CentralCriticScorer` is the slot scorer whose *value* reads it: a deep-sets
critic joins the three roles' rows of each patient slot (slot i is the same patient
for every role), pools them, adds the three contexts and the agent's own actor
embedding. The *actor* is :class:`~agents.rllib.modules.SlotScorerModule`'s, unchanged:
its logits never read ``state``, so acting stays decentralised and needs no ``state``
key — the loop evaluator (``ModulePolicy``) and the rllib evaluator play a trained
central-critic module on the ordinary role observation, as they play the default one
(a test checks that changing ``state`` leaves the logits unchanged).

The value head's gradient reaches the actor's trunk through the own-embedding input,
as in the default (local) module, so the two differ only in what the critic sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from agents.rllib.modules import DEFAULT_WIDTH, OBS_KEY, SlotScorerModule, _mlp
from agents.rllib.wrappers import ObsWrapper
from envs.ed.config import AGENTS, ROLE_OF

STATE_KEY = "state"


def state_layout() -> list[list[int]]:
    """[[F, C] per role in :data:`AGENTS` order]: slot features and context features
    of each role's block of the state vector (N slot rows of F, then C)."""
    from envs.ed.observation import FEATURES

    return [[len(FEATURES[ROLE_OF[a]][0]), len(FEATURES[ROLE_OF[a]][1])] for a in AGENTS]


class GlobalStateEnv(ObsWrapper):
    """Every agent's observation gains ``state``: all roles' observation vectors."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        boxes = [env.observation_space(a)[OBS_KEY] for a in AGENTS]
        high = np.concatenate([b.high for b in boxes]).astype(np.float32)
        state = spaces.Box(0.0, high, shape=high.shape, dtype=np.float32)
        self._spaces = {a: spaces.Dict({**s.spaces, STATE_KEY: state})
                        for a, s in self._spaces.items()}  # fmt: skip

    def observations(self, obs: dict[str, dict]) -> dict[str, dict]:
        # The env returns every agent's observation at every step, final ones included.
        state = np.concatenate([obs[a][OBS_KEY] for a in AGENTS]).astype(np.float32)
        return {a: {**o, STATE_KEY: state} for a, o in obs.items()}


class CentralCriticScorer(SlotScorerModule):
    """:class:`SlotScorerModule` whose value function reads the global ``state``
    (``model_config``: the slot scorer's, plus ``state_layout`` = :func:`state_layout`).
    Acting never reads ``state``."""

    def setup(self) -> None:
        super().setup()
        cfg = self.model_config or {}
        layout = cfg.get("state_layout")
        if not layout:
            raise ValueError("CentralCriticScorer needs model_config['state_layout'] "
                             "(agents.rllib.central_critic.state_layout)")  # fmt: skip
        self.state_layout = [(int(f), int(c)) for f, c in layout]
        size = sum(self.n_slots * f + c for f, c in self.state_layout)
        width = int(cfg.get("width", DEFAULT_WIDTH))
        space = self.observation_space.spaces.get(STATE_KEY)
        # Evaluation envs carry no state: the scale then comes with the trained weights.
        high = np.ones(size, np.float32) if space is None else np.asarray(space.high, np.float32)
        if high.shape != (size,):
            raise ValueError(f"state of shape {high.shape} does not fit the layout "
                             f"{self.state_layout} × {self.n_slots} slots")  # fmt: skip
        scale = np.where(np.isfinite(high) & (high > 0), high, 1.0).astype(np.float32)
        self.register_buffer("_state_scale", torch.as_tensor(scale))
        slot_in = sum(f for f, _ in self.state_layout) + int(self.position)
        self.critic_slot_enc = _mlp([slot_in, width, width])
        self.critic_ctx_enc = _mlp([sum(c for _, c in self.state_layout), width])
        self.critic_pool = _mlp([3 * width, width, width])
        # Replaces the local value head: value(own actor embedding, global embedding).
        self.value_head = _mlp([2 * width, width, 1])

    def _critic_embed(self, state: torch.Tensor) -> torch.Tensor:
        x = state / self._state_scale
        n, start, rows, ctx = self.n_slots, 0, [], []
        for f, c in self.state_layout:
            rows.append(x[:, start : start + n * f].reshape(-1, n, f))
            ctx.append(x[:, start + n * f : start + n * f + c])
            start += n * f + c
        slots = torch.cat(rows, -1)  # the three roles' views of each patient slot
        present = rows[0][..., self.present : self.present + 1] > 0
        if self.position:
            slots = torch.cat([slots, self._rank.expand(slots.shape[0], -1, -1)], -1)
        h = torch.relu(self.critic_slot_enc(slots))
        mean = (h * present).sum(1) / present.sum(1).clamp(min=1)
        hmax = torch.where(present, h, torch.zeros_like(h)).amax(1)
        g = torch.relu(self.critic_ctx_enc(torch.cat(ctx, -1)))
        return torch.relu(self.critic_pool(torch.cat([mean, hmax, g], -1)))

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        obs = batch[Columns.OBS]
        if STATE_KEY not in obs:
            raise KeyError(
                f"the central critic's value needs the {STATE_KEY!r} observation "
                "(train on agents.rllib.central_critic.GlobalStateEnv); acting does not"
            )
        if embeddings is None:
            _, embeddings, _ = self._embed(obs)
        g = self._critic_embed(obs[STATE_KEY].to(embeddings.dtype))
        return self.value_head(torch.cat([embeddings, g], -1)).squeeze(-1)


__all__ = ["STATE_KEY", "CentralCriticScorer", "GlobalStateEnv", "state_layout"]

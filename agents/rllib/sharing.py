"""Parameter sharing for the ``ed`` team (``run.py --share-params``): one slot-scorer
module plays all three roles.

The roles' spaces differ — per patient slot the nurse sees 27 features and picks one
of 5 categories, the pharmacist 37 features and one of 15 drugs, the consultant 10
features and one action (serve); their contexts have 6, 19 and 8 features — so one
module gets a *common padded layout* (:class:`SharedLayout`):

* observation: N slots × (F_max + 3) + (C_max + 3): each role's slot row and context,
  each divided by the role's own upper bounds (so a column's scale does not depend on
  which role's feature it holds), zero-padded, and the role one-hot appended to every
  slot row and to the context;
* actions: N × K_max + 1 (K_max = 15): slot i's action k is ``i·K_max + k``, END last;
  a role's padded actions (k ≥ its K) are masked, and :meth:`SharedLayout.env_action`
  translates back (a padded action outside the role maps to an out-of-range action,
  which the env counts as an illegal no-op). ``hint`` is padded like the mask.

What is shared: every weight (slot encoder, pooling, context encoder, per-slot action
head, END head, value head); a role differs only by its one-hot and its columns. What
the spaces do not allow to share: the *meaning* of a feature column and of an action
index k differs by role (column 3 is the nurse's ``retriage_allowed`` but the
pharmacist's ``flowchart``; action k is a category for the nurse, a drug for the
pharmacist), so the network must tell roles apart by the one-hot — a shared encoder
does not transfer knowledge of, say, waits between roles unless it learns the
alignment itself.

Training plays :class:`SharedSpacesEnv` (the padded spaces, one module id for every
agent). Evaluation plays the ordinary role observations: :class:`RoleViewModule` is
the trained shared module seen from one role (pads the role's observation, keeps its
columns of the logits), so the loop evaluator's ``ModulePolicy`` and the rllib
evaluator play it as they play a per-role module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

from agents.rllib.modules import HINT_KEY, MASK_KEY, OBS_KEY
from agents.rllib.wrappers import ObsWrapper
from envs.ed.config import AGENTS, ROLE_OF

ACTION_KEYS = (MASK_KEY, HINT_KEY)
"""Observation keys indexed by action (padded like the mask)."""


@dataclass(frozen=True)
class SharedLayout:
    """The common padded layout of the three roles for ``n_slots`` patient slots."""

    n_slots: int

    @cached_property
    def roles(self) -> list[tuple[int, int, int]]:
        """(F slot features, C context features, K actions per slot) per agent, in
        :data:`AGENTS` order."""
        from envs.ed.engine import action_sizes
        from envs.ed.observation import FEATURES

        sizes = action_sizes(self.n_slots)
        out = []
        for a in AGENTS:
            f, c = FEATURES[ROLE_OF[a]]
            out.append((len(f), len(c), (sizes[ROLE_OF[a]] - 1) // self.n_slots))
        return out

    @property
    def f_max(self) -> int:
        return max(f for f, _, _ in self.roles)

    @property
    def c_max(self) -> int:
        return max(c for _, c, _ in self.roles)

    @property
    def k_max(self) -> int:
        return max(k for _, _, k in self.roles)

    @property
    def slot_features(self) -> int:
        return self.f_max + len(AGENTS)

    @property
    def context_features(self) -> int:
        return self.c_max + len(AGENTS)

    @property
    def obs_size(self) -> int:
        return self.n_slots * self.slot_features + self.context_features

    @property
    def n_actions(self) -> int:
        return self.n_slots * self.k_max + 1

    def obs_index(self, agent: str) -> np.ndarray:
        """Where each entry of ``agent``'s observation goes in the padded one."""
        f, c, _ = self.roles[AGENTS.index(agent)]
        n, fp = self.n_slots, self.slot_features
        slots = (np.arange(n)[:, None] * fp + np.arange(f)[None, :]).reshape(-1)
        return np.concatenate([slots, n * fp + np.arange(c)]).astype(np.int64)

    def role_features(self, agent: str) -> np.ndarray:
        """The padded observation's constant part: the role one-hot of every slot row
        and of the context (all else 0)."""
        r, n, fp = AGENTS.index(agent), self.n_slots, self.slot_features
        out = np.zeros(self.obs_size, np.float32)
        out[np.arange(n) * fp + self.f_max + r] = 1.0
        out[n * fp + self.c_max + r] = 1.0
        return out

    def action_index(self, agent: str) -> np.ndarray:
        """The padded action of each of ``agent``'s actions (END → the last)."""
        _, _, k = self.roles[AGENTS.index(agent)]
        slots = (np.arange(self.n_slots)[:, None] * self.k_max + np.arange(k)[None, :]).reshape(-1)
        return np.concatenate([slots, [self.n_actions - 1]]).astype(np.int64)

    def env_actions(self, agent: str) -> np.ndarray:
        """Padded action → ``agent``'s action; padded actions outside the role map to
        one past its END (out of range: the env counts it as an illegal no-op)."""
        idx = self.action_index(agent)
        out = np.full(self.n_actions, len(idx), np.int64)
        out[idx] = np.arange(len(idx))
        return out

    def space(self, hints: bool, extra: dict[str, spaces.Space] | None = None) -> spaces.Dict:
        """The shared module's observation space (``extra``: keys passed through)."""
        acts = (self.n_actions,)
        d: dict[str, spaces.Space] = {
            OBS_KEY: spaces.Box(0.0, 1.0, shape=(self.obs_size,), dtype=np.float32),
            MASK_KEY: spaces.Box(0, 1, shape=acts, dtype=np.int8),
        }
        if hints:
            d[HINT_KEY] = spaces.Box(0.0, 1.0, shape=acts, dtype=np.float32)
        return spaces.Dict({**d, **(extra or {})})

    def model_config(self) -> dict[str, Any]:
        """The shared slot scorer's layout keys."""
        return {"n_slots": self.n_slots, "context_features": self.context_features}


class SharedSpacesEnv(ObsWrapper):
    """Every agent sees the padded layout and acts in the padded action space; other
    observation keys (the central critic's ``state``) pass through."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.layout = layout = SharedLayout(env.unwrapped.n_slots)
        first = self._spaces[AGENTS[0]]
        hints = HINT_KEY in first.spaces
        extra = {k: s for k, s in first.spaces.items() if k not in (OBS_KEY, *ACTION_KEYS)}
        common = layout.space(hints, extra)
        self._spaces = {a: common for a in self.possible_agents}
        self._obs_index = {a: layout.obs_index(a) for a in AGENTS}
        self._inv_high = {a: 1.0 / env.observation_space(a)[OBS_KEY].high for a in AGENTS}
        self._role = {a: layout.role_features(a) for a in AGENTS}
        self._act_index = {a: layout.action_index(a) for a in AGENTS}
        self._env_actions = {a: layout.env_actions(a) for a in AGENTS}
        self._action_space = spaces.Discrete(layout.n_actions)

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def env_action(self, agent: str, action: Any) -> int:
        return int(self._env_actions[agent][int(action)])

    def padded(self, agent: str, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = self._role[agent].copy()
        x[self._obs_index[agent]] = np.asarray(obs[OBS_KEY]) * self._inv_high[agent]
        out = {k: v for k, v in obs.items() if k not in (OBS_KEY, *ACTION_KEYS)}
        out[OBS_KEY] = x.astype(np.float32)
        for key in ACTION_KEYS:
            if key in obs:
                v = np.asarray(obs[key])
                p = np.zeros(self.layout.n_actions, v.dtype)
                p[self._act_index[agent]] = v
                out[key] = p
        return out

    def observations(self, obs: dict[str, dict]) -> dict[str, dict]:
        return {a: self.padded(a, o) for a, o in obs.items()}


class RoleViewModule(TorchRLModule):
    """A shared module seen from one role: reads the role's own observation (and
    ``hint``), returns logits over the role's own actions. Inference only.

    ``model_config``: ``agent``, ``critic`` (the shared module's class,
    :data:`agents.rllib.variants.CRITICS`) and ``shared_config`` (its model_config);
    the observation / action spaces are the role's. Build one from a trained module
    with :meth:`from_shared`."""

    def setup(self) -> None:
        from agents.rllib.variants import CRITICS

        cfg = self.model_config or {}
        self.agent = cfg["agent"]
        shared_cfg = dict(cfg["shared_config"])
        layout = SharedLayout(int(shared_cfg["n_slots"]))
        box = self.observation_space[OBS_KEY]
        want = layout.obs_index(self.agent).shape[0]
        if box.shape != (want,) or self.action_space.n != len(layout.action_index(self.agent)):
            raise ValueError(
                f"{self.agent}'s spaces (observation {box.shape}, {self.action_space.n} "
                f"actions) are not those of the shared module's task ({layout.n_slots} "
                "slots): evaluate it on the task it was trained on"
            )
        self.hints = bool(shared_cfg.get("hints", False))
        self.shared = CRITICS[cfg.get("critic", "local")](
            observation_space=layout.space(self.hints),
            action_space=spaces.Discrete(layout.n_actions),
            model_config=shared_cfg,
        )
        t = torch.as_tensor
        self.register_buffer("_obs_index", t(layout.obs_index(self.agent)))
        self.register_buffer("_inv_high", t(1.0 / np.asarray(box.high, np.float32)))
        self.register_buffer("_role", t(layout.role_features(self.agent)))
        self.register_buffer("_act_index", t(layout.action_index(self.agent)))
        self.n_padded_actions = layout.n_actions

    @classmethod
    def from_shared(cls, module: Any, agent: str, observation_space: spaces.Dict,
                    action_space: spaces.Discrete) -> RoleViewModule:  # fmt: skip
        """``agent``'s view of the trained shared ``module`` (its weights copied)."""
        from agents.rllib.variants import critic_of

        view = cls(
            observation_space=observation_space,
            action_space=action_space,
            model_config={"agent": agent, "critic": critic_of(module),
                          "shared_config": dict(module.model_config or {})},
        )  # fmt: skip
        view.shared.load_state_dict(module.state_dict())
        return view

    def _pad_actions(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(v.shape[0], self.n_padded_actions, dtype=v.dtype, device=v.device)
        out[:, self._act_index] = v
        return out

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        x = obs[OBS_KEY].to(self._inv_high.dtype)
        padded = self._role.expand(x.shape[0], -1).clone()
        padded[:, self._obs_index] = x * self._inv_high
        shared_obs = {OBS_KEY: padded, MASK_KEY: self._pad_actions(obs[MASK_KEY])}
        if self.hints:
            shared_obs[HINT_KEY] = self._pad_actions(obs[HINT_KEY])
        out = self.shared._forward({Columns.OBS: shared_obs})
        return {Columns.ACTION_DIST_INPUTS: out[Columns.ACTION_DIST_INPUTS][:, self._act_index]}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        raise NotImplementedError("a role view plays a shared module: train the shared module")


__all__ = ["ACTION_KEYS", "RoleViewModule", "SharedLayout", "SharedSpacesEnv"]

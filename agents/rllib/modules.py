"""RLModules: a permutation-invariant per-patient scorer (trainable, PPO) and an
inference-only wrapper that runs any registered :class:`agents.base.Policy` inside
RLlib's EnvRunners.

Both read the env's observation dict ``{"observation": (N·F + C,), "action_mask":
(N·K + 1,)}``: N padded patient slots of F features, C context features, K actions per
slot (1 for the queue envs: serve slot i) and one trailing "wait / end" action.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from torch import nn

OBS_KEY, MASK_KEY, HINT_KEY = "observation", "action_mask", "hint"
DEFAULT_WIDTH = 64
SPARSE_MIN_SLOTS = 512
"""Batches of at least this many slots (rows × N) compute only the occupied or legal
slots (:meth:`SlotScorerModule._embed`); smaller ones, every slot."""


def slot_layout(observation_space: gym.spaces.Dict, model_config: dict) -> tuple[int, int, int]:
    """(N slots, F features per slot, C context features) from the config or the
    queue-env convention (N = mask length − 1, C = envs.observation.G)."""
    from envs.observation import G

    obs_dim = observation_space[OBS_KEY].shape[0]
    n_slots = model_config.get("n_slots", observation_space[MASK_KEY].shape[0] - 1)
    context = model_config.get("context_features", G)
    features, rest = divmod(obs_dim - context, n_slots)
    if rest or features <= 0:
        raise ValueError(
            f"observation of size {obs_dim} does not split into {n_slots} slots + "
            f"{context} context features; set model_config n_slots/context_features"
        )
    return n_slots, features, context


class _LogSoftmaxCategorical(torch.distributions.Categorical):
    """torch's ``Categorical`` over ``logits``, normalised by ``log_softmax`` instead of
    ``logits - logits.logsumexp()``: the same distribution up to float rounding, but
    with masked logits (``FLOAT_MIN``) the exp inside ``logsumexp`` takes a slow
    underflow path on CPUs, ~5-9x ``log_softmax`` on a learner's minibatch."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = torch.log_softmax(logits, -1)
        self._param = self.logits
        self._num_events = self.logits.size()[-1]
        batch = self.logits.size()[:-1] if self.logits.ndimension() > 1 else torch.Size()
        torch.distributions.Distribution.__init__(self, batch, validate_args=False)

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """One draw per row by the Gumbel-max trick, argmax(log p + G) with G = −log E,
        E ~ Exp(1): exactly the categorical distribution, at ~half the cost of torch's
        ``multinomial`` on a runner's small batches (~40 % of RLlib's action sampling).
        E is kept above 0 so that an illegal action (log p ≈ ``FLOAT_MIN``) never wins."""
        if torch.Size(sample_shape).numel() != 1:
            return super().sample(sample_shape)
        noise = torch.empty_like(self.logits).exponential_().clamp_min_(_TINY)
        draw = (self.logits - noise.log_()).argmax(-1)
        return draw.reshape(self._extended_shape(torch.Size(sample_shape)))


_TINY = torch.finfo(torch.float32).tiny


@torch.distributions.kl.register_kl(_LogSoftmaxCategorical, _LogSoftmaxCategorical)
def _kl_log_softmax(p: _LogSoftmaxCategorical, q: _LogSoftmaxCategorical) -> torch.Tensor:
    """torch's categorical KL (``inf`` where q has no mass and p has, 0 where p has none)
    with ``where`` in place of its two boolean-mask assignments, which went through
    ``nonzero`` and were ~3/4 of PPO's KL term on a learner's minibatch."""
    p_probs, q_probs = p.probs, q.probs
    t = p_probs * (p.logits - q.logits)
    t = torch.where(q_probs == 0, torch.inf, t)
    return torch.where(p_probs == 0, 0.0, t).sum(-1)


class MaskedCategorical(TorchCategorical):
    """RLlib's ``TorchCategorical`` built on :class:`_LogSoftmaxCategorical` (logits
    only; probabilities as RLlib's)."""

    def _get_torch_distribution(
        self, logits: torch.Tensor | None = None, probs: torch.Tensor | None = None
    ) -> torch.distributions.Distribution:
        if logits is None:
            return super()._get_torch_distribution(logits=logits, probs=probs)
        return _LogSoftmaxCategorical(logits)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


class SlotScorerModule(TorchRLModule, ValueFunctionAPI):
    """Deep-sets actor-critic: a shared encoder embeds every patient slot, a pooled
    context (mean and max over present slots + the context features) conditions a
    per-slot head that scores each slot's K actions, and a context head gives the
    wait/end logit and the value. Illegal actions get ``FLOAT_MIN`` logits.

    Permutation equivariant in the slots: reordering patients (with their features)
    reorders their logits. ``model_config``: ``width`` (64), ``slot_position`` (True:
    append the slot's index / N, i.e. the arrival rank, to its features — visible
    information that FIFO uses and without which two patients with equal reports and
    waits are indistinguishable), ``hints`` (False; True: the observation holds a
    ``hint``, the role heuristic's one-hot action (:mod:`agents.rllib.hints`), read as
    per-slot features and added to the logits with a fixed weight, ``hint_weight``), optional
    ``n_slots`` / ``context_features`` / ``present_feature`` (0: the slot feature that
    is 1 when a patient is present).
    """

    def setup(self) -> None:
        cfg = self.model_config or {}
        obs_space = self.observation_space
        self.n_slots, self.n_feat, self.n_ctx = slot_layout(obs_space, cfg)
        n_actions = self.action_space.n
        self.per_slot, rest = divmod(n_actions - 1, self.n_slots)
        if rest:
            raise ValueError(f"{n_actions} actions are not {self.n_slots} slots × K + 1")
        self.present = int(cfg.get("present_feature", 0))
        self.position = bool(cfg.get("slot_position", True))
        self.hints = bool(cfg.get("hints", False))
        width = int(cfg.get("width", DEFAULT_WIDTH))
        high = np.asarray(obs_space[OBS_KEY].high, dtype=np.float32)
        scale = np.where(np.isfinite(high) & (high > 0), high, 1.0)
        self.register_buffer("_scale", torch.as_tensor(scale))
        rank = torch.arange(self.n_slots, dtype=torch.float32) / self.n_slots
        self.register_buffer("_rank", rank[None, :, None])
        hint_slot, hint_ctx = (self.per_slot, 1) if self.hints else (0, 0)
        self.slot_enc = _mlp([self.n_feat + int(self.position) + hint_slot, width, width])
        self.ctx_enc = _mlp([self.n_ctx + hint_ctx, width])
        if self.hints:
            from agents.rllib.hints import HINT_WEIGHT

            # A fixed prior: learning its weight let PPO unlearn the heuristic in one
            # bad update (seen as a collapse of the team return mid-training).
            w = float(cfg.get("hint_weight", HINT_WEIGHT))
            self.register_buffer("hint_weight", torch.tensor(w))
        self.pool = _mlp([3 * width, width, width])
        self.slot_head = _mlp([2 * width, width, self.per_slot])
        self.end_head = _mlp([width, width, 1])
        self.value_head = _mlp([width, width, 1])

    # No layer here depends on train/eval mode (no dropout, no batch norm), so the
    # per-call eval()/train() walk over every submodule that TorchRLModule does around
    # each forward pass (~5 % of a runner's sampling) is skipped; RLModule's own
    # checks stay.
    def forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return RLModule.forward_exploration(self, batch, **kwargs)

    def forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return RLModule.forward_inference(self, batch, **kwargs)

    def forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return RLModule.forward_train(self, batch, **kwargs)

    # One distribution class for acting, training and evaluation (MaskedCategorical).
    def get_exploration_action_dist_cls(self) -> type[TorchCategorical]:
        return MaskedCategorical

    def get_train_action_dist_cls(self) -> type[TorchCategorical]:
        return MaskedCategorical

    def get_inference_action_dist_cls(self) -> type[TorchCategorical]:
        return MaskedCategorical

    def _embed(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(slot embeddings, context (B, width), where the slots are). On a large batch
        (a learner's minibatch) only the slots with a patient or a legal action are
        computed — embeddings (P, width) and ``where`` their (row, slot) indices: an
        empty slot's features are zero, it is left out of the pooling and its actions
        are masked, so its embedding reaches no output (on mass_casualty 86 % of the
        slots are empty at a decision). On a small batch (acting) every slot is
        computed, (B, N, width) and ``where`` None: fewer, larger ops are faster there."""
        x = obs[OBS_KEY] / self._scale
        n, f, k = self.n_slots, self.n_feat, self.per_slot
        slots = x[:, : n * f].reshape(-1, n, f)
        batch = slots.shape[0]
        present = slots[..., self.present] > 0
        ctx_in = x[:, n * f :]
        parts = [slots]
        if self.position:
            parts.append(self._rank.expand(batch, -1, -1))
        if self.hints:
            hint = obs[HINT_KEY].to(x.dtype)
            parts.append(hint[:, :-1].reshape(-1, n, k))
            ctx_in = torch.cat([ctx_in, hint[:, -1:]], -1)
        where = None
        if batch * n >= SPARSE_MIN_SLOTS:
            legal = obs[MASK_KEY][:, : n * k].reshape(-1, n, k) > 0
            where = (present | legal.any(-1)).nonzero(as_tuple=True)
            parts = [p[where] for p in parts]
        h = torch.relu(self.slot_enc(torch.cat(parts, -1)))
        count = present.sum(1, keepdim=True).clamp(min=1)
        # relu: h >= 0, so the zeros of empty slots (or of a row's empty start) leave the
        # max and the sum unchanged.
        if where is None:
            grid = h * present.unsqueeze(-1).to(h.dtype)
            mean, hmax = grid.sum(1) / count, grid.amax(1)
        else:
            # Pooled per row straight from the P computed slots: no (B, N, width) grid,
            # whose amax backward (an equality mask over the grid) was ~20 % of a
            # minibatch's forward and backward passes.
            pooled = h * present[where].unsqueeze(-1).to(h.dtype)
            rows = where[0]
            mean = h.new_zeros(batch, h.shape[-1]).index_add(0, rows, pooled) / count
            by_row = rows.unsqueeze(-1).expand_as(pooled)
            hmax = h.new_zeros(batch, h.shape[-1]).scatter_reduce(0, by_row, pooled, "amax")
        ctx = torch.relu(self.ctx_enc(ctx_in))
        c = torch.relu(self.pool(torch.cat([mean, hmax, ctx], -1)))
        return h, c, where

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        h, c, where = self._embed(obs)
        if where is None:
            per_slot = self.slot_head(torch.cat([h, c[:, None, :].expand_as(h)], -1))
        else:
            scores = self.slot_head(torch.cat([h, c[where[0]]], -1))
            per_slot = c.new_zeros(c.shape[0], self.n_slots, self.per_slot)
            per_slot = per_slot.index_put(where, scores)
        logits = torch.cat([per_slot.reshape(c.shape[0], -1), self.end_head(c)], -1)
        if self.hints:
            logits = logits + self.hint_weight * obs[HINT_KEY].to(logits.dtype)
        # The masks are 0/1: + 0 or + FLOAT_MIN, clamp(log(mask)) with one op, not three.
        return {
            Columns.ACTION_DIST_INPUTS: logits + torch.where(obs[MASK_KEY] > 0, 0.0, FLOAT_MIN),
            Columns.EMBEDDINGS: c,
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            _, embeddings, _ = self._embed(batch[Columns.OBS])
        return self.value_head(embeddings).squeeze(-1)


class FixedModule(RLModule):
    """Base of the inference-only RLModules whose decisions come from elsewhere (a
    registered policy, the env's advice, an LLM): not trainable, no tensors, no state in
    checkpoints. Subclasses implement ``setup`` and ``_forward_inference``."""

    # RLlib's connectors hand it torch tensors like any torch module; it has no
    # parameters, so it stays a plain RLModule (a parameterless TorchRLModule would
    # break a Learner's optimizer).
    framework = "torch"

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._forward_inference(batch, **kwargs)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        raise NotImplementedError(f"{self} is a fixed policy: it does not train")

    def to(self, *args: Any, **kwargs: Any) -> FixedModule:
        # A single-agent EnvRunner moves its module to a torch device; there is nothing
        # to move.
        return self

    def get_state(self, *args, **kwargs) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        pass


class PolicyModule(FixedModule):
    """Inference-only RLModule around a registered :class:`agents.base.Policy`
    (``model_config={"policy": "severity_greedy"}``), so heuristics act in the same
    EnvRunners as learned modules. Not trainable; keeps no state in checkpoints.

    The evaluators (:mod:`agents.rllib.evaluation`, :mod:`agents.rllib.classic_evaluation`)
    hand it the env's :class:`~agents.base.PolicyContext` (:meth:`bind`: the planner and
    the classic oracle need it) and the episode seed before every episode (:meth:`reset`),
    so that it plays as in our loop, seed by seed. ``model_config["team_index"]`` (an
    ``ed`` agent's index) selects :func:`agents.roles.make_team`'s rule: a fresh policy
    every episode, ``random`` seeded ``seed * 3 + team_index``; without it, the classic
    loop's: one policy, ``reset(seed)`` per episode. The policy sees the env's own
    observation keys only (``observation``, ``action_mask``), as in the loop."""

    def setup(self) -> None:
        from agents.base import POLICIES, UnknownPolicyError

        cfg = self.model_config or {}
        name = cfg.get("policy")
        if not name:
            raise ValueError('PolicyModule needs model_config={"policy": <registered name>}')
        if name not in POLICIES:
            raise UnknownPolicyError(
                f"unknown policy {name!r}; registered: {', '.join(sorted(POLICIES))}"
            )
        index = cfg.get("team_index")
        self.policy_name: str = name
        self.team_index: int | None = None if index is None else int(index)
        self._context: Any = None
        self._policy: Any = None

    @property
    def policy(self) -> Any:
        if self._policy is None:
            self._policy = self._build(None)
        return self._policy

    def _build(self, seed: int | None) -> Any:
        from agents import make_policy

        kw = {}
        if self.policy_name == "random" and self.team_index is not None:
            kw["seed"] = None if seed is None else seed * 3 + self.team_index
        return make_policy(self.policy_name, context=self._context, **kw)

    def bind(self, context: Any) -> None:
        """Play in the env of ``context`` (the policy is rebuilt with it)."""
        self._context = context
        self._policy = None

    def reset(self, seed: int | None = None) -> None:
        """A new episode on ``seed``, as the evaluation loop starts one."""
        if self.team_index is not None:  # make_team: a fresh policy per episode
            self._policy = self._build(seed)
        self.policy.reset(seed)

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = {k: _to_numpy(v) for k, v in batch[Columns.OBS].items() if k in ENV_KEYS}
        return {Columns.ACTIONS: self.policy.act_vec(obs)}

    def __str__(self) -> str:
        return self.policy_name


ENV_KEYS = (OBS_KEY, MASK_KEY)
"""The observation keys of our envs; evaluation envs add ``hint``/``advice``, which
policies playing as in the loop do not see."""


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

"""Inference-only RLModule around :class:`llm_policy.policy.LLMPolicy`, so an LLM acts
in the same RLlib EnvRunners as the PPO modules (single- or multi-agent).

``RLModuleSpec(module_class=LLMModule, model_config={...})`` with any
:class:`~llm_policy.policy.LLMConfig` field (``role``, ``mode``, ``backend``, ``model``,
``fallback``, ``batch_size``, ``max_new_tokens``, ``threads``) and optionally
``backend_factory="package.module:function"`` (a zero-argument callable returning a
built backend, e.g. a small model for tests). Each forward renders one prompt per env
of the runner from the numeric observation and decides the whole batch in one backend
call (``LLMPolicy.act_vec``).

RLlib field notes (shared/RLLIB_NOTES.md pitfalls 3–5): a plain ``RLModule`` (no
parameters for a Learner's optimizer), the model is loaded on the first forward pass,
never in ``setup`` (``inference_only`` is not reliable on EnvRunners), and the state is
empty (weights are never synced or checkpointed). Leave it out of
``policies_to_train`` in a multi-agent config, e.g. ``nurse=llm`` beside a trained
``consultant`` module.
"""

from __future__ import annotations

import importlib
from dataclasses import fields
from typing import Any

from agents.rllib.modules import PolicyModule

BACKEND_FACTORY = "backend_factory"


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"{BACKEND_FACTORY}={path!r}: use 'package.module:function'")
    return getattr(importlib.import_module(module), name)


class LLMModule(PolicyModule):
    """An :class:`LLMPolicy` as an RLModule; counts in ``self.llm.counter``."""

    def setup(self) -> None:
        from llm_policy.policy import LLMConfig

        # RLlib merges its default model_config keys in (e.g. vf_share_layers): keep ours.
        known = {f.name for f in fields(LLMConfig)} | {BACKEND_FACTORY}
        cfg = {k: v for k, v in (self.model_config or {}).items() if k in known}
        factory = cfg.pop(BACKEND_FACTORY, None)
        LLMConfig(**cfg).validate()  # fail at build time, not on the first forward pass
        self._factory = factory
        self._options = cfg
        self._llm = None

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from llm_policy.policy import LLMPolicy

            backend = _import(self._factory)() if self._factory else None
            self._llm = LLMPolicy(backend=backend, **self._options)
        return self._llm

    @property
    def policy(self) -> Any:  # PolicyModule's forward passes act through this
        return self.llm


__all__ = ["LLMModule"]

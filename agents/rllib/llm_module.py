"""Inference-only RLModule around :class:`llm_policy.policy.LLMPolicy`, so an LLM acts
in the same RLlib EnvRunners as the PPO modules (single- or multi-agent).

``RLModuleSpec(module_class=LLMModule, model_config={...})`` with any
:class:`~llm_policy.policy.LLMConfig` field (``role``, ``mode``, ``backend``, ``model``,
``fallback``, ``batch_size``, ``max_new_tokens``, ``threads``) and optionally
``backend_factory="package.module:function"`` (a zero-argument callable returning a
built backend, e.g. a small model for tests). Each forward renders one prompt per env
of the runner from the numeric observation and decides the whole batch in one backend
call (``LLMPolicy.act_vec``).

One model per EnvRunner process: every LLMModule of the process (the three ``ed``
agents, say) shares one backend per (backend, model, threads, factory), built on the
first forward pass that needs it (:func:`process_backend`). The ``ed`` nurse and
pharmacist read the presentations through the env's context, which the caller that
holds the EnvRunner hands over with :meth:`LLMModule.bind` (in-process: the runner's
env and modules live in the same process); ``reset`` starts a new episode's fallback
count (``episode_fallbacks``: ``illegal_actions`` in results).

RLlib field notes (shared/RLLIB_NOTES.md pitfalls 3–5): a plain ``RLModule`` (no
parameters for a Learner's optimizer), the model is loaded on the first forward pass,
never in ``setup`` (``inference_only`` is not reliable on EnvRunners), and the state is
empty (weights are never synced or checkpointed). Leave it out of
``policies_to_train`` in a multi-agent config, e.g. ``nurse=llm`` beside a trained
``consultant`` module.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4)
def process_backend(
    factory: str | None, backend: str, model: str | None, threads: int | None
) -> Any:
    """The backend of this process for these settings (one loaded model per process)."""
    if factory:
        return _import(factory)()
    from llm_policy.policy import LLMConfig, build_backend

    return build_backend(LLMConfig(backend=backend, model=model, threads=threads))


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

            o = self._options
            key = (self._factory, o.get("backend", "transformers"), o.get("model"),
                   o.get("threads"))  # fmt: skip
            settings = {k: v for k, v in o.items() if k != "backend"}  # built here, once
            self._llm = LLMPolicy(backend=process_backend(*key), **settings)
        return self._llm

    def bind(self, context: Any) -> None:
        """Play in the env of ``context`` (presentations for the ed nurse/pharmacist)."""
        self.llm.bind(context)

    def reset(self, seed: int | None = None) -> None:
        """A new episode: the per-episode fallback count restarts."""
        self.llm.reset(seed)

    @property
    def episode_fallbacks(self) -> int:
        return self.llm.episode_fallbacks

    @property
    def policy(self) -> Any:  # PolicyModule's forward passes act through this
        return self.llm

    def __str__(self) -> str:
        return f"LLMModule({self._options.get('role', 'consultant')!r})"


__all__ = ["LLMModule", "process_backend"]

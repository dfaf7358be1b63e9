"""The CPU side of :mod:`llm_policy.finetune`: precision, batching and the loss of one step.

What makes the recipe's 100 steps finish on a CPU (measured by
``experiments/bench_finetune.py`` against the plain fp32 path, same run, same data):

* **bf16 autocast** where the CPU has bf16 dot products (``avx512_bf16`` or
  ``amx_bf16`` in ``/proc/cpuinfo``; oneDNN runs the matmuls in bf16), else fp32. The
  LoRA weights, their gradients, the optimizer state and the loss stay fp32.
* **Length-grouped batches with dynamic padding**: examples are shuffled, cut into
  mega-batches of :data:`MEGA_BATCH_MULT` batches, sorted by length inside each
  (transformers' ``get_length_grouped_indices``, as ``Trainer(group_by_length=True)``),
  and every batch is padded only to its own longest example.
* **Logits only where a loss is taken**: the decoder runs over the whole sequence, but
  the LM head (49,152 × 576 for SmolLM2) and the fp32 log-softmax run only on the
  answer positions (about a fifth of the tokens; the prompt is masked). The loss is the
  mean token cross-entropy of the micro-batch, exactly what ``model(labels=...)`` gives.
* **Frozen base weights held in bf16** (``hold_frozen_in_bf16``) where the CPU has bf16:
  the matmuls run in bf16 without autocast re-casting every weight on every call; the
  LoRA weights (peft casts their input up), gradients, optimizer state and loss stay fp32.
* **The batch's shared prompt prefix encoded once** (``shared_prefix_length``): every
  SFT prompt starts with the same system instruction (113 of ~306 tokens for SmolLM2),
  so the decoder runs it for one row, repeats its key/value cache over the batch and
  runs only the rest per row; gradients flow back through the repeated cache. Same
  tokens, same positions, same loss (``tests/test_train_step.py``).
* **Eager attention and bf16 LoRA matmuls**: the plain attention beats SDPA's CPU flash
  kernel on ~300-token rows, and autocast over the bf16-held weights runs the LoRA
  matmuls in bf16 too (their weights, gradients and optimizer state stay fp32).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100
PRECISIONS = ("auto", "bf16", "fp32")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
MEGA_BATCH_MULT = 16
"""Batches per length-sorted mega-batch: larger groups pad less but order the data more."""
CPUINFO = Path("/proc/cpuinfo")

Example = tuple[list[int], list[int]]


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not available)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_bf16_supported(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX-BF16)."""
    return bool((cpu_flags() if flags is None else flags) & BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: str, flags: frozenset[str] | None = None) -> str:
    """``auto`` → ``bf16`` on a CUDA device or a bf16-capable CPU, else ``fp32``. An
    explicit ``bf16`` on a CPU without bf16 instructions is refused (it would be
    emulated, slower than fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    native = device.startswith("cuda") or cpu_bf16_supported(flags)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        raise ValueError(
            "--precision bf16: this CPU has neither avx512_bf16 nor amx_bf16 "
            "(bf16 would be emulated); use --precision fp32 or auto"
        )
    return precision


def autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def hold_frozen_in_bf16(model: Any) -> int:
    """Cast the frozen (non-trainable) parameters to bf16 in place; the trainable LoRA
    weights stay fp32. Returns how many parameters were cast. Buffers (rotary
    frequencies) are left fp32: the model computes them in fp32 anyway."""
    import torch

    cast = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype != torch.bfloat16:
            p.data = p.data.to(torch.bfloat16)
            cast += p.numel()
    return cast


def step_context(
    precision: str, device: str, bf16_weights: bool, lora_autocast: bool = False
) -> contextlib.AbstractContextManager:
    """Autocast where bf16 is wanted and the weights are not already bf16 — or, with
    ``lora_autocast``, over bf16-held weights too, so that the LoRA matmuls also run in
    bf16 (their weights, gradients and optimizer state stay fp32)."""
    held_plain = bf16_weights and not lora_autocast
    return autocast("fp32" if held_plain else precision, device)


@contextlib.contextmanager
def flush_subnormals() -> Iterator[None]:
    """Flush subnormal floats to zero while training (tiny LoRA gradients and Adam moments
    late in a run would otherwise be computed in microcode on x86), then restore the
    default IEEE behaviour: the mode is process-global, and libraries that rely on
    subnormals (hypothesis refuses to run without them) share the process."""
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


ATTENTIONS = ("eager", "sdpa")


def set_attention(model: Any, attention: str | None) -> None:
    """Switch the decoder's attention kernel (transformers' ``attn_implementation``) in
    place; None leaves the model's own. On these short SFT rows the plain (eager)
    attention is faster on a CPU than SDPA's flash-attention CPU kernel
    (``experiments/bench_finetune_parts.py``)."""
    if attention is None:
        return
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; use one of {', '.join(ATTENTIONS)}")
    _causal_lm(model).set_attn_implementation(attention)


# -- batches -----------------------------------------------------------------------------------
def batch_order(
    lengths: Sequence[int], batch_size: int, group_by_length: bool, rng: random.Random
) -> list[list[int]]:
    """One epoch of batches (lists of example indices). Length-grouped: transformers'
    mega-batch grouping, then the batches themselves shuffled so that a step's
    micro-batches are not all long or all short."""
    if not group_by_length:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    order = get_length_grouped_indices(list(lengths), batch_size, MEGA_BATCH_MULT, gen)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def batches_forever(
    examples: Sequence[Example], batch_size: int, group_by_length: bool, seed: int
) -> Iterator[list[Example]]:
    """Batches of ``batch_size`` examples, epoch after reshuffled epoch."""
    rng = random.Random(seed)
    lengths = [len(ids) for ids, _ in examples]
    while True:
        for batch in batch_order(lengths, batch_size, group_by_length, rng):
            yield [examples[i] for i in batch]


def collate(batch: Sequence[Example], pad_id: int, torch: Any) -> dict:
    """Right-padded to the batch's own longest example (dynamic padding)."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    att = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        att[i, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": att}


# -- loss --------------------------------------------------------------------------------------
def _causal_lm(model: Any) -> Any:
    """The ``*ForCausalLM`` inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def shared_prefix_length(batch: dict) -> int:
    """Leading tokens that every row of the batch shares, stopping before the position
    whose hidden state predicts the first answer token of any row (0 for one row)."""
    ids, labels = batch["input_ids"], batch["labels"]
    if ids.shape[0] < 2:
        return 0
    common = int((ids == ids[:1]).all(dim=0).long().cumprod(0).sum())
    first_label = int((labels != IGNORE_INDEX).long().argmax(dim=1).min())
    return max(0, min(common, first_label - 1))


def _decode_shared_prefix(lm: Any, batch: dict, prefix: int) -> Any:
    """Hidden states of positions ``prefix`` … end: the prefix is run for one row and its
    key/value cache repeated over the batch (differentiably)."""
    import torch
    from transformers import DynamicCache

    ids, att = batch["input_ids"], batch["attention_mask"]
    rows, width = ids.shape
    decoder = lm.get_decoder()
    cache = DynamicCache(config=lm.config)
    decoder(input_ids=ids[:1, :prefix], past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(rows)
    positions = torch.arange(prefix, width, device=ids.device).expand(rows, -1)
    return decoder(
        input_ids=ids[:, prefix:], attention_mask=att, past_key_values=cache,
        position_ids=positions, use_cache=True,
    ).last_hidden_state  # fmt: skip


def answer_loss(model: Any, batch: dict, shared_prefix: bool = False) -> Any:
    """Mean next-token cross-entropy over the labelled (answer) positions, with the LM
    head applied to those positions only; equal to ``model(**batch).loss``.
    ``shared_prefix``: encode the rows' common prompt prefix once (same result)."""
    import torch.nn.functional as F

    lm = _causal_lm(model)
    prefix = shared_prefix_length(batch) if shared_prefix else 0
    if prefix:
        hidden = _decode_shared_prefix(lm, batch, prefix)
    else:
        hidden = lm.get_decoder()(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            use_cache=False,
        ).last_hidden_state  # fmt: skip
    targets = batch["labels"][:, prefix + 1 :]
    keep = targets != IGNORE_INDEX
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


def full_logits_loss(model: Any, batch: dict) -> Any:
    """The plain transformers loss: logits at every position (the old CPU path)."""
    return model(**batch).loss


__all__ = [
    "ATTENTIONS",
    "IGNORE_INDEX",
    "MEGA_BATCH_MULT",
    "PRECISIONS",
    "answer_loss",
    "autocast",
    "batch_order",
    "batches_forever",
    "collate",
    "flush_subnormals",
    "cpu_bf16_supported",
    "cpu_flags",
    "full_logits_loss",
    "hold_frozen_in_bf16",
    "resolve_precision",
    "set_attention",
    "shared_prefix_length",
    "step_context",
]

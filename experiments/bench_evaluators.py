"""Wall time of the two evaluators (RLlib's EnvRunners, our loop) playing the same
policies on the same seeds, in one process, alternating, with step logs as the front
door keeps them; the ratio is per repeat (rllib / loop, same repeat).

    python experiments/bench_evaluators.py --ruleset ed --task mass_casualty --episodes 50
    python experiments/bench_evaluators.py --ruleset classic --task mass_casualty
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ED_TEAMS = ("heuristic", "planner", "random")
CLASSIC_POLICIES = ("random", "fifo", "severity_greedy", "deterioration_greedy", "oracle")


def _play(ruleset: str, evaluator: str, task: str, seeds: list[int], labels: list[str]) -> int:
    """Play every label on every seed with one evaluator; return the rows played."""
    from envs.rulesets import get_ruleset

    rules = get_ruleset(ruleset)
    evaluate = rules.load(f"evaluators.{evaluator}")
    if not rules.team:  # one role: the classic evaluators' signature
        rows, _ = evaluate(labels, task, seeds, ruleset, log_steps=True)
        return len(rows)
    from agents.roles import team_spec

    teams = {label: team_spec(label) for label in labels}
    return len(evaluate(task, teams, seeds, version="v1", step_log=[]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ruleset", choices=("ed", "classic"), default="ed")
    ap.add_argument("--task", default="mass_casualty")
    ap.add_argument("--episodes", type=int, default=50, help="seeds 10,000 … per policy")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compare", nargs="*", default=None, help="default: " + " ".join(ED_TEAMS)
                    + " (ed); " + " ".join(CLASSIC_POLICIES) + " (classic)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.episodes < 1 or args.repeats < 1:
        ap.error("--episodes and --repeats must be at least 1")
    import torch

    from agents.rllib.quiet import silence_harmless_logs

    silence_harmless_logs()
    torch.set_num_threads(1)
    from envs.rulesets import get_ruleset

    team = get_ruleset(args.ruleset).team
    labels = list(args.compare or (ED_TEAMS if team else CLASSIC_POLICIES))
    seeds = list(range(10_000, 10_000 + args.episodes))
    _play(args.ruleset, "rllib", args.task, seeds[:1], labels[:1])  # imports, warm caches
    _play(args.ruleset, "loop", args.task, seeds[:1], labels[:1])
    print(f"{args.ruleset} {args.task}: {len(labels)} policies × {len(seeds)} seeds")
    for rep in range(args.repeats):
        took = {}
        for evaluator in ("loop", "rllib"):
            t0 = time.perf_counter()
            n = _play(args.ruleset, evaluator, args.task, seeds, labels)
            took[evaluator] = time.perf_counter() - t0
        ratio = took["rllib"] / took["loop"]
        print(f"repeat {rep + 1}: loop {took['loop']:.1f} s, rllib {took['rllib']:.1f} s "
              f"({n} episodes each): rllib / loop = {ratio:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate the rule-based triage nurse against the ground truth on generated patients.

How to run::

    python experiments/eval_nurse.py                       # 10,000 patients, seed 0
    python experiments/eval_nurse.py --n 10000 --seed 0 --out results/nurse_eval.json

Three charting scenarios, each on ``--n`` patients from ``PatientGenerator(seed)``
(default category mix 5/15/35/35/10 %):

* ``realistic`` — the generator default: every vital noised, 3 % of each vital,
  5 % of pain scores and 10 % of flowcharts missing;
* ``complaint_only`` — no flowchart ever (the nurse picks it from the complaint);
* ``sparse`` — 20 % of each vital, 30 % of pain scores and 50 % of flowcharts missing.

Then rolls the nurse (category + protocol intervention) and three naive policies through
``--episodes`` seeded ``NurseSim-Triage-v0`` episodes and reports the mean return and
reward terms per episode.

Prints, per scenario, the confusion matrix (rows true 1–5, columns assigned 1–5),
exact accuracy, the under-triage rate of true category 1–2 patients (assigned less
urgent than the truth), the share of true 1–2 sent to 3–5, and the over-triage rate
(assigned more urgent than the truth, all patients); writes all of it as JSON.

Results to expect (seed 0, n = 10,000; full tables in docs/clinical.md):

=============== ======== ======================== ===================== ===========
scenario        accuracy under-triage of true 1-2 true 1-2 assigned 3-5 over-triage
=============== ======== ======================== ===================== ===========
realistic       0.9279   0.0049                   0.0010                0.0529
complaint_only  0.9202   0.0049                   0.0010                0.0569
sparse          0.8863   0.0170                   0.0107                0.0843
=============== ======== ======================== ===================== ===========

NurseSim (200 episodes): the nurse's mean return ≈ 105.8 per 12-patient episode, every
naive policy negative. The text rules were written against this library, so these are
in-sample figures (an upper bound for free-text charts). Exit status 1 if any
scenario's under-triage of true 1-2 exceeds 5 %. Takes about 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.nurse import RuleBasedNurse  # noqa: E402
from envs.clinical import ChartingConfig, Intervention, PatientGenerator  # noqa: E402
from envs.clinical.generator import REALISTIC_CHARTING  # noqa: E402
from envs.nursesim import NurseSimTriageEnv  # noqa: E402

SCENARIOS: dict[str, ChartingConfig] = {
    "realistic": REALISTIC_CHARTING,
    "complaint_only": ChartingConfig(
        p_missing_vital=0.03, p_missing_pain=0.05, p_missing_flowchart=1.0
    ),
    "sparse": ChartingConfig(p_missing_vital=0.20, p_missing_pain=0.30, p_missing_flowchart=0.50),
}
UNDER_TRIAGE_LIMIT = 0.05  # the safety requirement on true category 1-2


def triage_metrics(true: np.ndarray, assigned: np.ndarray) -> dict:
    """Confusion matrix and rates; ``true``/``assigned`` hold categories 1–5."""
    cm = np.zeros((5, 5), dtype=int)
    np.add.at(cm, (true - 1, assigned - 1), 1)
    high = true <= 2
    return {
        "n": int(true.size),
        "confusion_matrix": cm.tolist(),
        "accuracy": float(np.mean(true == assigned)),
        "under_triage_true_1_2": float(np.mean(assigned[high] > true[high])) if high.any() else 0.0,
        "true_1_2_assigned_3_to_5": float(np.mean(assigned[high] >= 3)) if high.any() else 0.0,
        "under_triage_all": float(np.mean(assigned > true)),
        "over_triage_all": float(np.mean(assigned < true)),
        "recall_per_category": {
            str(c): float(cm[c - 1, c - 1] / cm[c - 1].sum()) if cm[c - 1].sum() else None
            for c in range(1, 6)
        },
    }


def evaluate(n: int, seed: int, charting: ChartingConfig) -> dict:
    patients = PatientGenerator(seed, charting=charting).sample_many(n)
    nurse = RuleBasedNurse()
    t0 = time.perf_counter()
    assigned = np.array([nurse.triage(p.presentation) for p in patients])
    elapsed = time.perf_counter() - t0
    true = np.array([int(p.category) for p in patients])
    return {**triage_metrics(true, assigned), "seconds": round(elapsed, 3)}


def _nurse_policy(nurse: RuleBasedNurse):
    def act(env: NurseSimTriageEnv) -> np.ndarray:
        category, intervention = nurse.decide(env.current_presentation)
        return np.array([category - 1, intervention.action_index])

    return act


def _fixed(category: int, intervention: Intervention):
    return lambda env: np.array([category - 1, intervention.action_index])


def rollout_nursesim(episodes: int, seed: int) -> dict:
    """Mean per-episode return and reward terms of simple policies in NurseSim-Triage-v0."""
    policies = {
        "rule_based_nurse": _nurse_policy(RuleBasedNurse()),
        "everyone_cat1_resus": _fixed(1, Intervention.SEND_TO_RESUS),
        "everyone_cat4_minors": _fixed(4, Intervention.SEND_TO_MINORS),
        "uniform_random": None,
    }
    out = {}
    for name, policy in policies.items():
        env = NurseSimTriageEnv()
        env.action_space.seed(seed)
        totals = dict.fromkeys(
            ("return", "correct_category", "safety_failure", "critical_wait", "safety_failures",
             "critical_wait_minutes"),
            0.0,
        )  # fmt: skip
        for episode in range(episodes):
            env.reset(seed=seed + episode)
            done = False
            while not done:
                action = env.action_space.sample() if policy is None else policy(env)
                _, reward, done, _, info = env.step(action)
                totals["return"] += reward
                for term, value in info["reward_terms"].items():
                    totals[term] += value
                totals["safety_failures"] += info["safety_failure"]
                totals["critical_wait_minutes"] += info["critical_wait_minutes"]
        out[name] = {k: round(v / episodes, 3) for k, v in totals.items()}
    return {"episodes": episodes, "seed": seed, "n_patients": NurseSimTriageEnv().n_patients,
            "per_episode_mean": out}  # fmt: skip


def format_report(name: str, m: dict) -> str:
    rows = ["true\\assigned    1     2     3     4     5"]
    for c, row in enumerate(m["confusion_matrix"], start=1):
        rows.append(f"      {c}     " + " ".join(f"{x:5d}" for x in row))
    return "\n".join(
        [
            f"== {name} (n={m['n']}) ==",
            *rows,
            f"exact accuracy                 {m['accuracy']:.4f}",
            f"under-triage of true 1-2       {m['under_triage_true_1_2']:.4f}",
            f"true 1-2 assigned 3-5          {m['true_1_2_assigned_3_to_5']:.4f}",
            f"over-triage (all patients)     {m['over_triage_all']:.4f}",
            f"under-triage (all patients)    {m['under_triage_all']:.4f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the rule-based triage nurse.")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/nurse_eval.json")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    ap.add_argument("--episodes", type=int, default=200, help="NurseSim episodes (0: skip)")
    args = ap.parse_args(argv)
    results = {
        "command": "python experiments/eval_nurse.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "n": args.n,
        "seed": args.seed,
        "scenarios": {},
    }
    for name in args.scenario or list(SCENARIOS):
        m = evaluate(args.n, args.seed, SCENARIOS[name])
        results["scenarios"][name] = m
        print(format_report(name, m), "\n")
    if args.episodes > 0:
        results["nursesim"] = rollout_nursesim(args.episodes, args.seed)
        print(f"== NurseSim-Triage-v0, {args.episodes} episodes, mean per episode ==")
        for name, m in results["nursesim"]["per_episode_mean"].items():
            print(
                f"{name:22s} return {m['return']:8.1f}  correct {m['correct_category']:6.1f}  "
                f"safety {m['safety_failure']:7.1f}  critical wait {m['critical_wait']:7.1f}"
            )
        print()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    worst = max(m["under_triage_true_1_2"] for m in results["scenarios"].values())
    return 0 if worst <= UNDER_TRIAGE_LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())

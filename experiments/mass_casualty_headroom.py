"""Why a random team keeps ~3/4 of the bound on ``ed`` v1 mass_casualty: the Queue
Doctor schedule's load, and where each team's serve reward comes from.

    python experiments/mass_casualty_headroom.py --seeds 50 \
        --out docs/benchmarks/mass_casualty_headroom

Plays the v1 env (``ed_triage_v1``, held-out seeds 10,000…) with the random team, the
heuristic team, the heuristic team with a *least-urgent-first* consultant (never idles a
free doctor, but serves the lowest visible priority first: the worst order a
work-conserving consultant can pick from what it sees) and the clairvoyant plan. Per
team: serve reward as % of the bound (mean ± 95 % t-interval), patients served, left
without being seen and died, doctor utilisation (doctor-steps treating / doctor-steps
on shift), the serve reward per true arrival category as % of the bound's reward
from that category, and how many patients the consultant could choose from when it
served (mean, and the share of serves with one choice). Writes ``<out>.json`` (the
summary) and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python experiments/mass_casualty_headroom.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import agents  # noqa: F401  (registers the policies)
from agents.base import Observation, Policy
from agents.ed_evaluation import RANDOM_TEAM, run_episode, team_context
from agents.oracle_ed import EdOracleTeam
from agents.report import mean_ci, run_record, write_json, write_text
from agents.roles import EdConsultant, make_team
from envs.ed.bound import solve
from envs.ed.config import N_CATEGORIES, Place
from envs.ed_triage_v1 import EdTriageV1ParallelEnv
from envs.reward import fast_serve_reward

TASK = "mass_casualty"
EVAL_SEED_START = 10_000
LEAST_URGENT = "least_urgent"
TEAMS = {
    "random": RANDOM_TEAM,
    "heuristic": None,
    "random nurse": "nurse=random",
    "random consultant": "consultant=random",
    "least-urgent-first consultant": f"consultant={LEAST_URGENT}",
    "oracle": "oracle",
}


class LeastUrgentConsultant(Policy):
    """Serves a patient whenever one is servable, in the reverse of the heuristic
    consultant's order (its key negated): the least urgent first."""

    name = LEAST_URGENT

    def __init__(self, context) -> None:
        super().__init__(context)
        self._heuristic = EdConsultant(context)

    def act(self, observation: Observation) -> int:
        mask = observation["action_mask"]
        n = len(mask) - 1
        legal = mask.copy()
        legal[n] = 1
        last = n  # END when nothing is servable
        while legal[:n].any():  # the heuristic's own order; keep its last pick
            last = self._heuristic.act({"observation": observation["observation"],
                                        "action_mask": legal})  # fmt: skip
            legal[last] = 0
        return int(last)


def episode(env: EdTriageV1ParallelEnv, spec: str | None, seed: int) -> dict:
    ctx = team_context(env)
    if spec == "oracle":
        team = EdOracleTeam(ctx).policies()
    else:
        extra = {LEAST_URGENT: {"consultant": LeastUrgentConsultant(ctx)}}
        team = make_team(spec, ctx, seed, extra)
    log: list[dict] = []
    info = run_episode(env, team, seed, log)
    s = env.state
    # Patients the consultant could choose from at each serve (END is always legal).
    choices = [r["legal_actions"] - 1 for r in log
               if r["agent"] == "consultant" and r["action"] != s.n_slots]  # fmt: skip
    bound = solve(env.task, seed, env.config)
    arrived = s.arrival_severity
    per_cat = np.zeros(N_CATEGORIES + 1)
    treating = 0
    for r in s.served:
        per_cat[arrived[r.slot]] += r.reward
        d = env.config.duration(r.true_severity)
        treating += int(s.need[r.slot]) * min(d, s.max_steps - r.served_step)
    return {
        "seed": seed, "serve_reward": info["grader"]["cumulative_reward"], "bound": bound.value,
        "pct_of_bound": 100.0 * info["score"], "served": len(s.served),
        "lwbs": int((s.place == Place.LWBS).sum()), "died": int((s.place == Place.DIED).sum()),
        "utilisation": treating / (env.task.num_doctors * s.max_steps),
        "choices": choices,
        "per_category": per_cat[1:].tolist(), "patients": s.n,
        "category_counts": np.bincount(arrived, minlength=N_CATEGORIES + 1)[1:].tolist(),
        "wait0_total": sum(fast_serve_reward(int(a), 0) for a in arrived),
        "doctor_steps_demanded": int(sum(int(s.need[i]) * env.config.duration(int(arrived[i]))
                                         for i in range(s.n))),
    }  # fmt: skip


def summarise(rows: dict[str, list[dict]]) -> dict:
    oracle_cat = np.mean([r["per_category"] for r in rows["oracle"]], axis=0)
    out = {}
    for team, rs in rows.items():
        pct, ci = mean_ci([r["pct_of_bound"] for r in rs])
        cat = np.mean([r["per_category"] for r in rs], axis=0)
        out[team] = {
            "pct_of_bound": pct, "pct_of_bound_ci95": ci,
            **{k: float(np.mean([r[k] for r in rs])) for k in ("served", "lwbs", "died",
                                                               "utilisation")},
            "servable_per_serve": float(np.mean([c for r in rs for c in r["choices"]])),
            "single_choice_share": float(np.mean([c == 1 for r in rs for c in r["choices"]])),
            "reward_per_category": cat.tolist(),
            "pct_of_bound_category": [100 * c / o if o > 0 else None
                                      for c, o in zip(cat, oracle_cat, strict=True)],
            # Categories 1, 2 and 3-5 together (3-5 decay slowly and may leave).
            "pct_of_bound_groups": [100 * cat[i] / oracle_cat[i] for i in (0, 1)]
            + [100 * cat[2:].sum() / oracle_cat[2:].sum()],
        }  # fmt: skip
    o = rows["oracle"]
    out["schedule"] = {
        "patients": float(np.mean([r["patients"] for r in o])),
        "category_counts": np.mean([r["category_counts"] for r in o], axis=0).tolist(),
        "doctor_steps_on_shift": None,
        "doctor_steps_demanded": float(np.mean([r["doctor_steps_demanded"] for r in o])),
        "bound": float(np.mean([r["bound"] for r in o])),
        "wait0_total": float(np.mean([r["wait0_total"] for r in o])),
        "bound_share_category": (100 * oracle_cat / oracle_cat.sum()).tolist(),
    }
    # The bound's reward by arrival category 1 / 2 / 3-5, in % of the bound.
    shares = out["schedule"]["bound_share_category"]
    out["schedule"]["bound_share_groups"] = [shares[0], shares[1], sum(shares[2:])]
    return out


def markdown(doc: dict) -> str:
    m, s = doc["meta"], doc["summary"]["schedule"]
    cats = " / ".join(f"{c:.1f}" for c in s["category_counts"])
    share = " / ".join(f"{c:.0f} %" for c in s["bound_share_groups"])
    lines = [
        f"# mass_casualty (ed v1): where the serve reward comes from ({m['date']})",
        "",
        f"Command: `{m['command']}` ({m['seconds']:.0f} s), "
        f"seeds {m['seeds'][0]}–{m['seeds'][-1]}.",
        "",
        f"Schedule per seed (mean): {s['patients']:.0f} patients, true arrival categories "
        f"1–5: {cats}; {m['doctors']} doctors × {m['steps']} steps = {s['doctor_steps_on_shift']} "
        f"doctor-steps on shift, {s['doctor_steps_demanded']:.1f} demanded if everyone were "
        f"treated ({m['treatment_steps']} steps each, specialists 2 doctors); bound "
        f"{s['bound']:.2f} (Σ wait-0 rewards {s['wait0_total']:.2f}); the bound's reward by "
        f"category 1 / 2 / 3–5: {share}.",
        "",
        "| team | % of bound | served | LWBS | died | doctor utilisation | "
        "% of the bound's reward from categories 1 / 2 / 3–5 | servable per serve "
        "(one choice) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for team in TEAMS:
        e = doc["summary"][team]
        per = " / ".join(f"{v:.0f}" for v in e["pct_of_bound_groups"])
        lines.append(f"| {team} | {e['pct_of_bound']:.1f} ± {e['pct_of_bound_ci95']:.1f} | "
                     f"{e['served']:.1f} | {e['lwbs']:.2f} | {e['died']:.2f} | "
                     f"{100 * e['utilisation']:.0f} % | {per} | {e['servable_per_serve']:.2f} "
                     f"({100 * e['single_choice_share']:.0f} %) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--seed-start", type=int, default=EVAL_SEED_START)
    ap.add_argument("--out", type=Path, default=Path("runs/mass_casualty_headroom"))
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error("--seeds must be at least 2 (95 % intervals need two seeds)")
    t0 = time.perf_counter()
    env = EdTriageV1ParallelEnv(task=TASK)
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    rows = {team: [episode(env, spec, s) for s in seeds] for team, spec in TEAMS.items()}
    summary = summarise(rows)
    summary["schedule"]["doctor_steps_on_shift"] = env.task.num_doctors * env.task.max_steps
    doc = {
        "meta": {
            "task": TASK, "env": "ed_triage_v1", "seeds": seeds,
            "doctors": env.task.num_doctors, "steps": env.task.max_steps,
            "treatment_steps": env.config.duration(1),
            "seconds": round(time.perf_counter() - t0, 1),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            **run_record("mass_casualty_headroom.py", argv),
        },
        "summary": summary,  # per-episode rows: rerun the command
    }  # fmt: skip
    write_json(args.out.with_suffix(".json"), doc)
    md = markdown(doc)
    write_text(args.out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

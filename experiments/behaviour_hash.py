"""Fingerprint of the engines' behaviour: one SHA-256 per (ruleset, task, team) over
every action, reward, observation, mask and the final grader of 20 seeded episodes.

How to run::

    python experiments/behaviour_hash.py --out /tmp/before.json      # on the old commit
    python experiments/behaviour_hash.py --out /tmp/after.json --against /tmp/before.json

``--ed-version v1`` (or any version of ``envs.ed.v1.ED_ENVS``) hashes the ``ed`` rows
on that env version instead of v0 (rows ``ed_v1/…``; the classic rows are unchanged)::

    python experiments/behaviour_hash.py --ed-version v1 --out /tmp/v1_before.json

Results to expect: ``--against`` prints ``identical`` for every row of a
behaviour-preserving change (a refactor, a new env version beside the old one) and
exits 1 naming the rows that differ otherwise. About 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLASSIC_TEAMS = ("severity_greedy", "random", "oracle")
ED_TEAMS = {
    "heuristic": None,
    "random": "nurse=random,consultant=random,pharmacist=random",
    "oracle": "oracle",  # the clairvoyant plan (agents.oracle_ed.EdOracleTeam)
}
ED_TASKS = ("basic_triage", "dynamic_queue", "mass_casualty", "generated")


def _feed(h: hashlib._Hash, *items: object) -> None:
    for x in items:
        if isinstance(x, np.ndarray):
            h.update(str(x.dtype).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        else:
            h.update(json.dumps(x, sort_keys=True, default=str).encode())


def classic_hash(task: str, policy_name: str, seeds: range) -> str:
    from agents.base import PolicyContext, make_policy
    from agents.evaluation import _make_env

    env = _make_env(task, "classic")
    policy = make_policy(policy_name, context=PolicyContext(task=env.task, ruleset="classic",
                                                            n_slots=env.n_slots))  # fmt: skip
    h = hashlib.sha256()
    for seed in seeds:
        policy.reset(seed)
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            a = policy.act(obs)
            _feed(h, obs["observation"], obs["action_mask"], int(a))
            obs, r, done, _, info = env.step(a)
            _feed(h, float(r))
        _feed(h, info.get("score"), info.get("grader"))
    return h.hexdigest()


def ed_hash(task: str, team_spec: str | None, seeds: range, version: str = "v0") -> str:
    from agents.ed_evaluation import team_context
    from agents.oracle_ed import EdOracleTeam
    from agents.roles import make_team
    from envs.ed.v1 import ED_ENVS

    env = ED_ENVS[version](task=task)
    ctx = team_context(env)
    h = hashlib.sha256()
    for seed in seeds:
        if team_spec == "oracle":
            team = EdOracleTeam(ctx).policies()
        else:
            team = make_team(team_spec, ctx, seed)
        for p in team.values():
            p.reset(seed)
        obs, _ = env.reset(seed=seed)
        infos: dict = {}
        while env.agents:
            actions = {a: int(team[a].act(obs[a])) for a in env.agents}
            for a in sorted(actions):
                _feed(h, a, obs[a]["observation"], obs[a]["action_mask"], actions[a])
            obs, rewards, _, _, infos = env.step(actions)
            _feed(h, {a: float(r) for a, r in rewards.items()})
        final = infos["consultant"]
        _feed(h, final["score"], final["grader"], final["kpis"])
    return h.hexdigest()


def fingerprint(n_seeds: int = 20, ed_version: str = "v0") -> dict[str, str]:
    seeds = range(n_seeds)
    out = {}
    for task in ("basic_triage", "dynamic_queue", "mass_casualty"):
        for name in CLASSIC_TEAMS:
            out[f"classic/{task}/{name}"] = classic_hash(task, name, seeds)
    for task in ED_TASKS:
        for label, spec in ED_TEAMS.items():
            prefix = "ed" if ed_version == "v0" else f"ed_{ed_version}"
            out[f"{prefix}/{task}/{label}"] = ed_hash(task, spec, seeds, ed_version)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="episodes per (task, team)")
    ap.add_argument("--out", type=Path, help="write the fingerprints here (JSON)")
    ap.add_argument("--against", type=Path, help="compare with an earlier --out file")
    ap.add_argument("--ed-version", default="v0", help="ed env version of the ed rows (v0, v1…)")
    args = ap.parse_args(argv)
    hashes = fingerprint(args.seeds, args.ed_version)
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
        tmp.replace(args.out)
    if args.against is None:
        for k, v in hashes.items():
            print(f"{k:40s} {v[:16]}")
        return 0
    before = json.loads(args.against.read_text())
    differ = [k for k in sorted(set(before) | set(hashes)) if before.get(k) != hashes.get(k)]
    for k in sorted(hashes):
        print(f"{k:40s} {'DIFFERENT' if k in differ else 'identical'}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

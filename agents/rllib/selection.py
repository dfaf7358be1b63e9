"""Decisions taken on validation seeds: which team teaches, which modules ship.

Both read seeds from :data:`VALIDATION_SEED_START` on — disjoint from the training
seeds (< :data:`agents.rllib.training.TRAIN_SEED_LIMIT`) and from ``run.py``'s
evaluation seeds (10,000 …) — so the held-out results are not picked on their own seeds.

- :func:`choose_teacher` (``--teacher auto``): the role-heuristic team or the rollout
  planner, whichever serves the larger mean share of the bound on the validation seeds.
- :func:`select_team` (``--select-episodes``): after PPO, each role keeps its trained
  module or its behaviour clone — the mix of the eight with the highest mean share of
  the bound on the validation seeds. PPO can drift below what it cloned (a noisy
  reward, a short budget); the clone is the teacher's play, so the team shipped does
  not fall below it by more than the validation noise. Model selection on held-out
  data, as the sweep picks its best trial (``experiments/sweep.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

VALIDATION_SEED_START = 20_000
"""First validation seed (the sweep's selection seeds too)."""
METRIC = "pct_of_oracle"
"""Served reward as a share of the same seed's exact bound (``ed`` v1's score × 100)."""
TRAINED, CLONE = "ppo", "clone"
"""Names of the two candidates for each role."""
AUTO_TEACHER = "auto"


def validation_seeds(n: int) -> list[int]:
    return list(range(VALIDATION_SEED_START, VALIDATION_SEED_START + n))


def _means(task: str, version: str, teams: dict, seeds: Sequence[int], extra=None) -> dict:
    from agents.ed_evaluation import evaluate_teams

    rows = evaluate_teams(task, teams, seeds, extra=extra, version=version)
    return {
        label: float(np.mean([r[METRIC] for r in rows if r["team"] == label])) for label in teams
    }


def choose_teacher(task: str, version: str, n_seeds: int) -> tuple[str, dict[str, float]]:
    """The teacher team with the larger mean share of the bound on ``n_seeds``
    validation seeds (the heuristic team on a tie), and both means."""
    from agents.rllib.imitation import TEACHERS

    means = _means(task, version, {t: t for t in TEACHERS}, validation_seeds(n_seeds))
    best = max(TEACHERS, key=lambda t: (means[t], t == TEACHERS[0]))
    return best, means


def mix_label(choice: dict[str, str]) -> str:
    """``triage_nurse=clone,consultant=ppo,…``: a mix as a team spec."""
    return ",".join(f"{a}={c}" for a, c in choice.items())


def select_team(
    trained: dict[str, Any], clones: dict[str, Any], task: str, version: str, n_seeds: int
) -> dict[str, Any]:
    """Evaluate every per-role mix of trained modules and clones (agent → RLModule) on
    ``n_seeds`` validation seeds; return the best mix (``roles``: agent → ``ppo`` or
    ``clone``; ties go to the mix with more trained roles) and every mix's mean."""
    from agents.rllib.module_policy import ModulePolicy

    agents = list(trained)
    extra = {
        name: {a: ModulePolicy(mods[a], name=name, agent=a) for a in agents}
        for name, mods in ((TRAINED, trained), (CLONE, clones))
    }
    choices = itertools.product((TRAINED, CLONE), repeat=len(agents))
    mixes = [dict(zip(agents, c, strict=True)) for c in choices]
    teams = {mix_label(m): m for m in mixes}
    means = _means(task, version, teams, validation_seeds(n_seeds), extra)
    best = max(mixes, key=lambda m: (means[mix_label(m)], sum(c == TRAINED for c in m.values())))
    return {
        "roles": best,
        "metric": METRIC,
        "seeds": [VALIDATION_SEED_START, VALIDATION_SEED_START + n_seeds - 1],
        "means": means,
        "trained": means[mix_label(dict.fromkeys(agents, TRAINED))],
        "clone": means[mix_label(dict.fromkeys(agents, CLONE))],
        "selected": means[mix_label(best)],
    }


def load_clones(bc_dir: Path, agents: Sequence[str]) -> dict[str, Any]:
    """The behaviour-cloned module of each agent saved under ``bc_dir``."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    missing = [a for a in agents if not (Path(bc_dir) / a).is_dir()]
    if missing:
        raise FileNotFoundError(f"no cloned module for {', '.join(missing)} under {bc_dir}")
    return {a: RLModule.from_checkpoint(str((Path(bc_dir) / a).resolve())) for a in agents}


def describe(sel: dict[str, Any]) -> str:
    """One line for the console and summary.md."""
    roles = ", ".join(f"{a} {c}" for a, c in sel["roles"].items())
    lo, hi = sel["seeds"]
    return (
        f"kept on validation seeds {lo}–{hi}: {roles} ({sel['selected']:.1f} % of the bound; "
        f"all trained {sel['trained']:.1f} %, all cloned {sel['clone']:.1f} %)"
    )


def select_and_record(
    s: Any, run_dir: Path, on_message: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Pick each role's trained module or clone on ``s.validation_episodes`` validation
    seeds for the run in ``run_dir`` (``s``: its
    :class:`agents.rllib.training.TrainSettings`) and record the choice in the
    checkpoint's train state (:func:`agents.rllib.variants.trained_team`
    plays it)."""
    import json

    import torch

    from agents.rllib.imitation import BC_DIR
    from agents.rllib.training import STATE_FILE, _read_state, load_module_at
    from envs.ed.config import AGENTS

    if on_message is not None:
        on_message(f"choosing trained module or clone per role on {s.validation_episodes} "
                   "validation seeds")  # fmt: skip
    prev = _read_state(run_dir)
    assert prev is not None  # train() has just checkpointed
    path = Path(prev.pop("path"))
    agents = list(AGENTS)
    trained = {a: load_module_at(path, a) for a in agents}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny one-observation forwards
    try:
        sel = select_team(trained, load_clones(run_dir / BC_DIR, agents), s.task, s.ed_version,
                          s.validation_episodes)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    sel["description"] = describe(sel)
    tmp = path / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({**prev, "selection": sel}, indent=1))
    tmp.replace(path / STATE_FILE)  # atomic: a crash leaves the old state whole
    return sel

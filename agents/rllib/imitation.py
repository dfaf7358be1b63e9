"""Warm start by imitation: teacher rollouts → behaviour cloning of each role's module.

``run.py --init bc`` (the ``ed`` default) runs, before PPO:

1. :func:`teacher_rollouts`: the teacher team (``heuristic``, the role heuristics;
   ``planner``, the rollout planner's consultant with the heuristic nurse and
   pharmacist, :data:`agents.roles.TEAM_POLICIES`; ``auto``, the better of the two on
   validation seeds, :func:`agents.rllib.selection.choose_teacher`) plays training
   seeds in the same env PPO trains on (hints included), logged in the
   ``--save-episodes`` step format (:func:`agents.ed_evaluation.run_episode`), written
   as ``teacher_episodes.parquet``.
2. :func:`clone`: for every role, its slot-scorer module (built from the very spec PPO
   uses) is fitted by cross-entropy to the teacher's actions and its value head by
   squared error to the teacher's discounted returns — RLlib's offline BC is
   single-agent, so this is our own loop over the same RLModules. Agreement with the
   teacher is measured on held-out teacher seeds (states with at least two legal
   actions; a forced move says nothing).
3. The cloned modules are saved under ``bc/<agent>``, restored into the PPO learner
   (which syncs them to the EnvRunners) and, frozen, serve as the teacher of the
   decaying KL term (:mod:`agents.rllib.teacher`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INITS = ("bc", "none")
"""``--init`` choices: behaviour-clone the teacher first, or start from random weights."""
TEACHERS = ("heuristic", "planner")
"""Teams that can teach (:data:`agents.roles.TEAM_POLICIES` names)."""
TEACHER_CHOICES = ("auto", *TEACHERS)
"""``--teacher`` values: ``auto`` takes the better teacher on validation seeds
(:func:`agents.rllib.selection.choose_teacher`)."""
BC_EPISODES = {"heuristic": 40, "planner": 100}
"""Default teacher episodes: 40 clone the deterministic role heuristics to 100 %
held-out agreement; the planner's consultant (a receding-horizon search) is harder to
imitate (73–86 % held out at 100 episodes, the 600-step fit cap binding)."""

BC_DIR = "bc"
"""Run-directory folder of the cloned modules (one sub-folder per agent)."""
TEACHER_EPISODES = "teacher_episodes.parquet"
HELD_OUT = 0.2
"""Share of the teacher's episodes kept out of fitting, to measure agreement."""


@dataclass(frozen=True)
class CloneSettings:
    """How much teacher play to record and how long to fit it."""

    episodes: int = 40
    seed_start: int = 5_000
    """First teacher seed: inside the training range (< 10,000), apart from PPO's draws
    only by chance, which is harmless (both are training seeds)."""
    steps: int = 600
    """Gradient steps per role at most (minibatches drawn with replacement)…"""
    max_epochs: int = 50
    """… and at most this many passes over a role's training states (small data)."""
    check_every: int = 50
    lr: float = 3e-3
    batch_size: int = 256
    gamma: float = 0.99
    value_weight: float = 0.5
    target_agreement: float = 0.995
    """Stop fitting a role once its held-out agreement reaches this."""


def teacher_env(task: str, version: str, hints: bool) -> Any:
    """The env PPO trains on (:func:`agents.rllib.training._ed_env_creator`), unwrapped
    from RLlib's PettingZoo adapter."""
    from envs.ed_triage_v1 import ED_ENVS

    env = ED_ENVS[version](task, normaliser="static")
    if hints:
        from agents.rllib.hints import HintedEdEnv

        env = HintedEdEnv(env)
    return env


def teacher_rollouts(
    task: str, version: str, teacher: str, seeds: Sequence[int], hints: bool
) -> list[dict]:
    """The teacher team's step log on ``seeds`` (one row per agent and sub-step)."""
    from agents.ed_evaluation import run_episode, team_context
    from agents.roles import make_team

    if teacher not in TEACHERS:
        raise ValueError(f"--teacher {teacher!r}: use one of {', '.join(TEACHERS)}")
    env = teacher_env(task, version, hints)
    context = team_context(getattr(env, "unwrapped", env))
    rows: list[dict] = []
    for seed in seeds:
        team = make_team(teacher, context, seed)
        log: list[dict] = []
        run_episode(env, team, int(seed), log)
        rows.extend({"task": task, "policy": teacher, **r} for r in log)
    return rows


def role_dataset(rows: Sequence[dict], agent: str, gamma: float) -> dict[str, np.ndarray]:
    """One role's arrays: observations (with hints when logged), masks, actions, the
    discounted return from each step, and the episode seed of each row."""
    mine = [r for r in rows if r["agent"] == agent]
    mine.sort(key=lambda r: (r["seed"], r["parallel_step"]))
    returns = np.zeros(len(mine), dtype=np.float32)
    g = 0.0
    for i in range(len(mine) - 1, -1, -1):
        if i == len(mine) - 1 or mine[i + 1]["seed"] != mine[i]["seed"]:
            g = 0.0  # the last step of an episode
        g = float(mine[i]["reward"]) + gamma * g
        returns[i] = g
    data = {
        "observation": np.asarray([r["observation"] for r in mine], dtype=np.float32),
        "action_mask": np.asarray([r["action_mask"] for r in mine], dtype=np.float32),
        "action": np.asarray([r["action"] for r in mine], dtype=np.int64),
        "return": returns,
        "seed": np.asarray([r["seed"] for r in mine], dtype=np.int64),
    }
    if mine and "hint" in mine[0]:
        data["hint"] = np.asarray([r["hint"] for r in mine], dtype=np.float32)
    return data


def _obs_batch(data: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, Any]:
    import torch
    from ray.rllib.core.columns import Columns

    keys = [k for k in ("observation", "action_mask", "hint") if k in data]
    return {Columns.OBS: {k: torch.as_tensor(data[k][idx]) for k in keys}}


def agreement(module: Any, data: dict[str, np.ndarray], idx: np.ndarray) -> float:
    """Share of states (with ≥ 2 legal actions) where the module's greedy action is
    the teacher's."""
    import torch
    from ray.rllib.core.columns import Columns

    idx = idx[data["action_mask"][idx].sum(1) >= 2]
    if len(idx) == 0:
        return 1.0
    with torch.no_grad():
        logits = module.forward_inference(_obs_batch(data, idx))[Columns.ACTION_DIST_INPUTS]
    return float((logits.argmax(-1).numpy() == data["action"][idx]).mean())


def fit(
    module: Any, data: dict[str, np.ndarray], cfg: CloneSettings, rng: np.random.Generator
) -> dict[str, float]:
    """Behaviour-clone one module in place (actor: cross-entropy to the teacher's
    action; critic: squared error to its discounted return); return the held-out and
    training agreement and the epochs run."""
    import torch
    from ray.rllib.core.columns import Columns

    seeds = np.unique(data["seed"])
    n_out = max(1, int(round(len(seeds) * HELD_OUT))) if len(seeds) > 1 else 0
    held_seeds = seeds[len(seeds) - n_out :]
    held = np.flatnonzero(np.isin(data["seed"], held_seeds))
    train = np.flatnonzero(~np.isin(data["seed"], held_seeds))
    # Forced moves teach the actor nothing, but the critic learns their values too.
    choice = data["action_mask"].sum(1) >= 2
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    ret = torch.as_tensor(data["return"])
    scale = float(ret.abs().mean().clamp(min=1.0))
    steps = 0
    budget = min(cfg.steps, -(-cfg.max_epochs * len(train) // cfg.batch_size))
    module.train()
    for steps in range(1, budget + 1):
        idx = train[rng.integers(0, len(train), cfg.batch_size)]
        batch = _obs_batch(data, idx)
        out = module.forward_train(batch)
        act = torch.as_tensor(data["action"][idx])
        pick = torch.as_tensor(choice[idx])
        ce = torch.nn.functional.cross_entropy(
            out[Columns.ACTION_DIST_INPUTS], act, reduction="none"
        )
        actor = (ce * pick).sum() / pick.sum().clamp(min=1)
        values = module.compute_values(batch, out.get(Columns.EMBEDDINGS))
        critic = (((values - ret[idx]) / scale) ** 2).mean()
        loss = actor + cfg.value_weight * critic
        opt.zero_grad()
        loss.backward()
        opt.step()
        if steps % cfg.check_every == 0 and len(held):
            module.eval()
            if agreement(module, data, held) >= cfg.target_agreement:
                break
            module.train()
    module.eval()
    return {
        "agreement_held_out": agreement(module, data, held) if len(held) else float("nan"),
        "agreement_train": agreement(module, data, train),
        "held_out_states": int((choice[held]).sum()),
        "train_states": int((choice[train]).sum()),
        "steps": steps,
    }


def clone(
    specs: dict[str, Any],
    rows: Sequence[dict],
    cfg: CloneSettings,
    out_dir: Path,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Fit one module per agent (``specs``: agent → RLModuleSpec with spaces set), save
    each under ``out_dir/<agent>``, return each role's agreement report."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    report: dict[str, dict[str, float]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    # Small modules: one thread is ~10x faster than torch's default on a loaded
    # 2-core machine (measured 0.07 vs 0.63 s per step), and leaves Ray its cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for agent, spec in specs.items():
            module = spec.build()
            report[agent] = fit(module, role_dataset(rows, agent, cfg.gamma), cfg, rng)
            module.save_to_path(str((out_dir / agent).resolve()))
    finally:
        torch.set_num_threads(threads)
    return report


def warm_start(
    s: Any, run_dir: Path, on_message: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Record the teacher (``teacher_episodes.parquet``), clone it into ``bc/`` under
    ``run_dir`` for the settings ``s`` (a :class:`agents.rllib.training.TrainSettings`);
    return the report kept in the run's train state."""
    import time

    from agents.rllib.training import ed_module_specs
    from experiments import report

    say = on_message or (lambda _msg: None)
    teacher, choice = s.teacher, None
    if teacher == "auto":
        from agents.rllib.selection import choose_teacher

        say(f"choosing the teacher on {s.validation_episodes} validation seeds")
        teacher, means = choose_teacher(s.task, s.ed_version, s.validation_episodes)
        choice = {"means": means, "episodes": s.validation_episodes}
        say(f"teacher: {teacher} (" + ", ".join(f"{t} {m:.1f} %" for t, m in means.items()) + ")")
    episodes = s.bc_episodes if s.bc_episodes is not None else BC_EPISODES[teacher]
    cfg = CloneSettings(episodes=episodes, gamma=s.gamma)
    seeds = range(cfg.seed_start + 1000 * s.seed, cfg.seed_start + 1000 * s.seed + cfg.episodes)
    t0 = time.time()
    say(f"recording the {teacher} team ({cfg.episodes} episodes)")
    rows = teacher_rollouts(s.task, s.ed_version, teacher, seeds, s.hints)
    report.write_parquet(run_dir / TEACHER_EPISODES, rows)
    env = teacher_env(s.task, s.ed_version, s.hints)
    specs = ed_module_specs(s.task, s.width, s.hints, s.hint_weight, s.ed_version)
    for agent, spec in specs.items():
        spec.observation_space = env.observation_space(agent)
        spec.action_space = env.action_space(agent)
    say(f"cloning the {teacher} team into one module per role")
    roles = clone(specs, rows, cfg, run_dir / BC_DIR, seed=s.seed)
    low = min(r["agreement_held_out"] for r in roles.values())
    say(f"cloned: held-out agreement with the {teacher} team ≥ {low:.1%}")
    return {
        "teacher": teacher,
        "teacher_choice": choice,
        "episodes": cfg.episodes,
        "seeds": [seeds.start, seeds.stop - 1],
        "roles": roles,
        "time_s": round(time.time() - t0, 1),
    }


def restore_clone(algo: Any, bc_dir: Path) -> None:
    """Load every cloned module into ``algo``'s learner; RLlib then syncs the weights to
    its EnvRunners (:meth:`ray.rllib.algorithms.Algorithm.restore_from_path`)."""
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE

    for path in sorted(Path(bc_dir).iterdir()):
        if path.is_dir():
            component = f"{COMPONENT_LEARNER_GROUP}/{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}"
            algo.restore_from_path(str(path.resolve()), component=f"{component}/{path.name}")

"""The batched ``ed`` env (envs/ed/vector_env.py) against the PettingZoo env, step by step.

Each row of :class:`EdVectorEnv` is replayed in its own scalar env with the same
episode seed and actions: observations, masks, rewards, terminations, the final score,
returns, deaths and LWBS must be equal — with random legal play, junk actions (out of
range, masked) and the pharmacist dosing the patient the nurse triages in the same
sub-step, across autoresets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.heuristics import RandomLegal
from envs.ed.config import AGENTS, N_CATEGORIES, N_DRUGS, V1
from envs.ed.v1 import ED_ENVS
from envs.ed.vector_env import EdVectorEnv
from envs.generator import GeneratorParams


def _assert_obs(vec_obs, scalar_obs, b, where):
    for a in AGENTS:
        for k in ("observation", "action_mask"):
            x, y = vec_obs[a][k][b], scalar_obs[a][k]
            assert x.dtype == y.dtype and x.shape == y.shape, (where, a, k)
            bad = np.flatnonzero(x != y)
            assert not bad.size, (
                f"{where} row {b} {a} {k} at {bad[:8]}: {x[bad[:8]]} vs {y[bad[:8]]}"
            )


def replay(task, version="v2", batch=3, seed=11, steps=250, reward_mode="team", **kw):
    """Play ``steps`` batched sub-steps and every row in a scalar env; returns counts
    of what was exercised."""
    vec = EdVectorEnv(batch, task=task, version=version, reward_mode=reward_mode, **kw)
    obs, info = vec.reset(seed=seed)
    envs = [ED_ENVS[version](task=task, normaliser="static", reward_mode=reward_mode, **kw)
            for _ in range(batch)]  # fmt: skip
    for b, env in enumerate(envs):
        _assert_obs(obs, env.reset(seed=info["episode_seed"][b])[0], b, "reset")
    rng = np.random.default_rng(seed)
    team = [RandomLegal(seed=seed + i) for i in range(3)]
    restarting = np.zeros(batch, dtype=bool)
    seen = {"steps": 0, "episodes": 0, "illegal": 0, "late_doses": 0, "deaths": 0, "lwbs": 0,
            "adverse": 0, "prevented": 0, "under_triage": 0, "advanced": 0}  # fmt: skip
    n = vec.n_slots
    for t in range(steps):
        acts = {}
        for i, a in enumerate(AGENTS):
            mask = obs[a]["action_mask"]
            act = team[i].choose({"action_mask": mask}).astype(np.int64)
            junk = rng.random(batch) < 0.08
            act[junk] = rng.integers(-1, mask.shape[1] + 1, size=int(junk.sum()))
            acts[a] = act
        nurse = acts["triage_nurse"]
        late = (rng.random(batch) < 0.25) & (nurse >= 0) & (nurse < n * N_CATEGORIES)
        acts["pharmacist"][late] = (nurse[late] // N_CATEGORIES) * N_DRUGS + rng.integers(
            0, N_DRUGS, size=int(late.sum())
        )
        start_masks = {a: obs[a]["action_mask"] for a in AGENTS}
        obs, rew, term, trunc, info = vec.step(acts)
        assert not trunc.any()
        for b, env in enumerate(envs):
            if restarting[b]:
                assert rew["consultant"][b] == 0.0 and not term[b] and info["_episode_seed"][b]
                _assert_obs(obs, env.reset(seed=info["episode_seed"][b])[0], b, f"autoreset {t}")
                restarting[b] = False
                continue
            joint = {a: int(acts[a][b]) for a in AGENTS}
            o, r, te, _, inf = env.step(joint)
            seen["steps"] += 1
            _assert_obs(obs, o, b, f"step {t}")
            assert all(rew[a][b] == r[a] for a in AGENTS), (t, b, rew, r)
            assert term[b] == te["consultant"]
            ph = joint["pharmacist"]
            if 0 <= ph < n * N_DRUGS and not start_masks["pharmacist"][b, ph]:
                seen["late_doses"] += not inf["pharmacist"]["illegal_action"]
            seen["illegal"] += sum(inf[a]["illegal_action"] for a in AGENTS)
            seen["advanced"] += inf["consultant"]["time_advanced"]
            if term[b]:
                final = inf["consultant"]
                assert info["_final"][b]
                assert info["score"][b] == final["score"]
                assert info["bound"][b] == final["oracle_value"]
                k = final["kpis"]
                assert (info["deaths"][b], info["lwbs"][b]) == (k["deaths"], k["lwbs"])
                for i, a in enumerate(AGENTS):
                    assert info["episode_return"][b, i] == inf[a]["episode_return"]
                    assert info["illegal"][b, i] == k[f"illegal_{a}"]
                seen["episodes"] += 1
                seen["deaths"] += k["deaths"]
                seen["lwbs"] += k["lwbs"]
                seen["adverse"] += k["adverse_events"]
                seen["prevented"] += k["prevented_deteriorations"]
                seen["under_triage"] += k["under_triage_events"]
                restarting[b] = True
    return seen


@pytest.mark.parametrize(
    ("task", "version", "reward_mode"),
    [("mass_casualty", "v2", "team"), ("basic_triage", "v1", "individual"),
     ("sepsis_wave", "v2", "individual"), ("icu_surge", "v1", "team")],
)  # fmt: skip
def test_rows_equal_the_pettingzoo_env(task, version, reward_mode):
    seen = replay(task, version, reward_mode=reward_mode)
    assert seen["episodes"] >= 2
    # The paths that matter were taken (a silent skip would make equality vacuous).
    for key in ("illegal", "late_doses", "advanced", "adverse"):
        assert seen[key] > 0, (key, seen)


def test_generated_task_pads_slots_and_other_rules():
    params = GeneratorParams(max_patients=14, horizon=10)
    config = replace(V1, critical_clock=True, treatment_steps=(3, 2, 2, 1, 1), retriage=False)
    seen = replay("generated", "v2", batch=4, steps=200, generator_params=params, config=config)
    assert seen["episodes"] >= 4 and seen["deaths"] + seen["lwbs"] > 0


def test_seeding_is_deterministic_and_autoresets_draw_from_the_env():
    def play(seed):
        vec = EdVectorEnv(4, task="basic_triage")
        obs, info = vec.reset(seed=seed)
        seeds, total = list(info["episode_seed"]), 0.0
        for _ in range(60):
            obs, rew, term, _, info = vec.step({})  # every agent ENDs
            total += float(rew["consultant"].sum())
            if "episode_seed" in info:
                restarted = info["_episode_seed"]
                seeds += [s for s, m in zip(info["episode_seed"], restarted, strict=True) if m]
        return seeds, total

    seeds, total = play(5)
    assert seeds[:4] == [5, 6, 7, 8] and len(seeds) > 4
    assert play(5) == (seeds, total)
    assert play(6)[0][:4] == [6, 7, 8, 9]


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="v0 is not batched"):
        EdVectorEnv(2, version="v0")
    with pytest.raises(ValueError, match="num_envs"):
        EdVectorEnv(0)
    with pytest.raises(ValueError, match="unknown task|Unknown task|task"):
        EdVectorEnv(2, task="no_such_task")
    vec = EdVectorEnv(2, task="basic_triage")
    with pytest.raises(RuntimeError, match="reset"):
        vec.step({})
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="integer dtype"):
        vec.step({"consultant": np.array([0.5, 1.0])})
    with pytest.raises(ValueError, match="expected 2"):
        vec.step({"consultant": np.array([0, 1, 2])})
    with pytest.raises(ValueError, match="unknown agent"):
        vec.step({"doctor": np.array([0, 0])})
    single = ED_ENVS["v2"](task="basic_triage")
    for a in AGENTS:
        assert vec.observation_space(a) == single.observation_space(a)
        assert vec.action_space(a) == single.action_space(a)


def test_public_ids_build_the_batched_env():
    from envs import ed_triage_v1, ed_triage_v2

    vec = ed_triage_v2.vector_env(3, task="dynamic_queue", reward_mode="individual")
    assert (vec.num_envs, vec.version, vec.reward_mode) == (3, "v2", "individual")
    assert ed_triage_v1.vector_env(2).version == "v1"
    obs, _ = vec.reset(seed=1)
    assert obs["pharmacist"]["action_mask"].shape == (3, vec.action_space("pharmacist").n)


def test_each_public_id_imports_first(tmp_path):
    import subprocess
    import sys

    # v2 subclasses v1 and the registry imports both: any import order must work.
    registry = "from envs.ed.v1 import ED_ENVS; assert set(ED_ENVS) == {'v0', 'v1', 'v2'}"
    for stmt in ("from envs import ed_triage_v2", "import envs.ed.v2", registry):
        subprocess.run([sys.executable, "-c", stmt], check=True, cwd=tmp_path)


def test_seed_range_keeps_every_episode_inside_it():
    vec = EdVectorEnv(3, task="basic_triage", seed_range=(100, 110))
    _, info = vec.reset(seed=8)
    seeds = list(info["episode_seed"])
    assert seeds == [108, 109, 100]  # as the scalar env maps reset(seed=s): lo + s % span
    for _ in range(80):
        _, _, _, _, info = vec.step({})
        if "episode_seed" in info:
            seeds += [s for s, m in zip(info["episode_seed"], info["_episode_seed"], strict=True)
                      if m]  # fmt: skip
    assert len(seeds) > 3 and all(100 <= s < 110 for s in seeds)

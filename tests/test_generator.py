"""The ``generated`` task: the procedural generator and its PettingZoo hook."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ed_evaluation import run_episode, team_context
from agents.roles import make_team
from envs import ed_triage_v0
from envs.ed.scenario import build_ed_scenario
from envs.generator import (
    GENERATED_TASK,
    GeneratorParams,
    generate_task,
    task_source,
)
from envs.types import NO_COUNTDOWN, Grader

SEEDS = range(60)


def _rows(task):
    return [(p.patient_id, p.step, p.severity, p.reported_severity, p.deterioration_countdown,
             p.requires_icu, p.requires_specialist) for p in task.arrivals]  # fmt: skip


def test_equal_seeds_equal_tasks_and_different_seeds_differ():
    assert generate_task(7) == generate_task(7)
    assert generate_task(np.int64(7)) == generate_task(7)
    assert len({tuple(_rows(generate_task(s))) for s in SEEDS}) == len(SEEDS)


def test_no_global_rng():
    np.random.seed(1)
    a = generate_task(3)
    np.random.seed(2)
    assert generate_task(3) == a


@pytest.mark.parametrize("seed", SEEDS)
def test_invariants(seed):
    p = GeneratorParams()
    t = generate_task(seed, p)
    assert t.name == GENERATED_TASK and t.grader is Grader.HARD and t.optimal_reward > 0
    assert (t.max_steps, t.num_doctors, t.icu_beds) == (p.horizon, p.doctors, p.icu_beds)
    assert 1 <= t.num_patients <= p.max_patients
    assert [a.patient_id for a in t.arrivals] == [f"P{i:03d}" for i in range(1, t.num_patients + 1)]
    steps = [a.step for a in t.arrivals]
    assert steps == sorted(steps) and 0 <= steps[0] and steps[-1] < p.horizon
    for a in t.arrivals:
        assert 1 <= a.severity <= 5 and 1 <= a.reported_severity <= 5
        assert a.deterioration_countdown == NO_COUNTDOWN or (
            a.severity >= 2 and 2 <= a.deterioration_countdown <= 4
        )
        assert not (a.requires_icu and a.requires_specialist)
        if a.requires_icu or a.requires_specialist:
            assert a.severity <= 2


def test_params_respected():
    p = GeneratorParams(horizon=12, doctors=1, icu_beds=0, arrival_rate=6.0, max_patients=25,
                        misreport_prob=1.0, deterioration_prob=0.0)  # fmt: skip
    for seed in range(10):
        t = generate_task(seed, p)
        assert (t.max_steps, t.num_doctors, t.icu_beds) == (12, 1, 0)
        assert t.num_patients == 25  # ~72 drawn, capped
        assert all(a.step < 12 for a in t.arrivals)
        # One doctor and no bed: no specialist or ICU patient could ever be served.
        assert not any(a.requires_icu or a.requires_specialist for a in t.arrivals)
        assert all(a.reported_severity != a.severity for a in t.arrivals)
        assert all(a.deterioration_countdown == NO_COUNTDOWN for a in t.arrivals)


def test_rates_and_surges_shape_the_draw():
    calm = GeneratorParams(arrival_rate=0.5, surge_prob=0.0, max_patients=200)
    busy = GeneratorParams(arrival_rate=0.5, surge_prob=0.5, surge_size=(5, 5), max_patients=200)
    n_calm = np.mean([generate_task(s, calm).num_patients for s in range(100)])
    n_busy = np.mean([generate_task(s, busy).num_patients for s in range(100)])
    assert 12 <= n_calm <= 18  # 30 steps x 0.5
    assert 65 <= n_busy - n_calm <= 85  # 30 steps x 0.5 surges x 5
    only_ones = GeneratorParams(category_mix=(1, 0, 0, 0, 0), surge_prob=0.0)
    assert {a.severity for a in generate_task(0, only_ones).arrivals} == {1}


def test_empty_draw_gets_one_patient():
    t = generate_task(0, GeneratorParams(arrival_rate=0.0, surge_prob=0.0))
    assert t.num_patients == 1 and t.arrivals[0].step == 0


@pytest.mark.parametrize(
    "bad",
    [{"horizon": 0}, {"surge_size": (3, 2)}, {"category_mix": (1, 1)}, {"icu_rate": 1.5},
     {"max_patients": 0}, {"deterioration_countdown": (0, 2)}],
)  # fmt: skip
def test_bad_params(bad):
    with pytest.raises(ValueError, match="invalid GeneratorParams"):
        GeneratorParams(**bad)


def test_generated_scenario_is_played_as_drawn():
    t = generate_task(11)
    sc = build_ed_scenario(t, 11)
    assert sc.seed == 11
    assert [(p.patient_id, p.arrival_step, p.severity) for p in sc.patients] == [
        (a.patient_id, a.step, a.severity) for a in t.arrivals
    ]


def test_task_source_registry():
    assert task_source("task_3_hard").n_slots == 21
    with pytest.raises(ValueError, match="generator_params"):
        task_source("basic_triage", GeneratorParams())
    assert task_source(GENERATED_TASK, GeneratorParams(max_patients=17)).n_slots == 17


def test_env_plays_the_seed_s_generated_task_in_fixed_slots():
    p = GeneratorParams(horizon=15, doctors=2, max_patients=24)
    env = ed_triage_v0.parallel_env(task="generated", generator_params=p, normaliser="static")
    assert env.n_slots == 24 and env.action_space("consultant").n == 25
    team = make_team(None, team_context(env))
    infos = {}
    for seed in (3, 4, 3):
        info = run_episode(env, team, seed)
        assert env.task == generate_task(seed, p)
        assert env.state.max_steps == 15 and env.state.n_slots == 24
        infos.setdefault(seed, []).append((info["score"], info["episode_return"]))
    assert infos[3][0] == infos[3][1] and infos[3][0] != infos[4][0]


def test_env_oracle_normaliser_uses_the_episode_task():
    env = ed_triage_v0.parallel_env(task="generated")
    team = make_team(None, team_context(env))
    info = run_episode(env, team, 5)
    assert 0.0 < info["score"] <= 1.0
    assert info["oracle_value"] >= info["grader"]["cumulative_reward"] > 0


def test_generator_params_only_for_generated():
    with pytest.raises(ValueError, match="generator_params"):
        ed_triage_v0.parallel_env(task="basic_triage", generator_params=GeneratorParams())


def test_bench_ed_smoke(tmp_path):
    import json

    from experiments.bench_ed import main

    out = tmp_path / "bench.json"
    main(["--episodes", "1", "--repeats", "1", "--tasks", "generated", "basic_triage",
          "--num-envs", "4", "--batch-factor", "3", "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    cells = result["cells"]
    tasks = ("generated", "basic_triage")
    scalar = {(v, t, team) for v in ("v0", "v1", "v2") for t in tasks
              for team in ("heuristic", "random")}  # fmt: skip
    batched = {(v, t, "random") for v in ("v1-batched", "v2-batched") for t in tasks}
    assert {(c["version"], c["task"], c["team"]) for c in cells} == scalar | batched
    assert all(c["steps_per_s"] > 0 and 0 < c["reset_share"] < 1 for c in cells)
    # Batched runs play whole episodes' worth of steps and are compared with their version.
    by = {(c["version"], c["task"]): c for c in cells if c["team"] == "random"}
    for t in tasks:
        assert by["v2-batched", t]["steps_per_episode"] > 0
    vs = [r for r in result["ratios"] if r["version"] == "v2-batched"]
    assert len(vs) == 2 and all(r["steps_per_s_vs_v2"] > 0 for r in vs)

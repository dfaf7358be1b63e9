"""The ``ed`` clairvoyant bound: exact against brute force, replayable, an upper
bound of every team's serve reward."""

from __future__ import annotations

import itertools

import pytest

from agents.ed_evaluation import evaluate_teams
from agents.oracle_ed import EdOracleTeam
from envs.clinical.presentation import Drug
from envs.ed.bound import EdPlan, plan, replay, solve
from envs.ed.config import AGENTS, DRUG_INDEX, EdConfig
from envs.ed.suite import SCENARIOS
from envs.tasks import get_task
from tests.ed_helpers import pat, scenario, tiny_task

ASPIRIN = DRUG_INDEX[Drug.ASPIRIN]


def brute_force(sc, config) -> float:
    """Max Σ serve reward over every serve-time assignment and dose time, each
    played through the engine by the plan player."""
    task = sc.task
    horizon = task.max_steps
    pats = sc.patients
    options = [[None, *range(p.arrival_step, horizon)] for p in pats]
    dosable = [p.slot for p in pats if p.deterioration_countdown > 0 and sc.indicated[p.slot] >= 0]
    dose_options = [[None, *range(horizon)] for _ in dosable]
    best = 0.0
    for serve_at in itertools.product(*options):
        load = [0] * horizon
        for p, t in zip(pats, serve_at, strict=True):
            if t is not None:
                load[t] += p.doctors_needed
        if any(x > task.num_doctors for x in load):
            continue
        for dose_at in itertools.product(*dose_options):
            serve = tuple(
                tuple(s for s, t in enumerate(serve_at) if t == k) for k in range(horizon)
            )
            dose = tuple(
                tuple((s, int(sc.indicated[s])) for s, t in zip(dosable, dose_at, strict=True)
                      if t == k) for k in range(horizon)
            )  # fmt: skip
            triage = tuple(tuple((s, pats[s].severity) for s, _ in x) for x in dose)
            st = replay(sc, config, EdPlan(triage, dose, serve, 0.0))
            best = max(best, sum(r.reward for r in st.served))
    return best


CASES = {
    "deterioration": (tiny_task(pat("A", 2, deterioration_countdown=1), pat("B", 1),
                                pat("C", 3, step=1), steps=3), {0: ASPIRIN}),
    "specialist": (tiny_task(pat("S", 2, requires_specialist=True), pat("B", 2), pat("C", 3),
                             steps=3, doctors=2), {}),
    "icu": (tiny_task(pat("I", 1, requires_icu=True), pat("J", 2, requires_icu=True),
                      pat("K", 4, step=1), steps=3, doctors=2, icu=1), {}),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_ilp_equals_brute_force(case):
    task, indicated = CASES[case]
    sc = scenario(task, indicated=indicated)
    config = EdConfig()
    p = plan(sc, config)
    st = replay(sc, config, p)
    assert sum(r.reward for r in st.served) == pytest.approx(p.objective)
    assert p.objective == pytest.approx(brute_force(sc, config))


def test_prevention_needs_the_drug_in_stock():
    task, indicated = CASES["deterioration"]
    sc = scenario(task, indicated=indicated)
    with_drug = plan(sc, EdConfig()).objective
    without = plan(sc, EdConfig.with_stock({Drug.ASPIRIN: 0})).objective
    assert with_drug > without


@pytest.mark.parametrize("task", ["basic_triage", "dynamic_queue", "mass_casualty"])
def test_bound_dominates_every_team(task):
    teams = {"heuristic": None, "random nurse": "nurse=random",
             "random consultant": "consultant=random"}  # fmt: skip
    rows = evaluate_teams(task, teams, seeds=range(4))
    for r in rows:
        assert r["serve_reward"] <= r["oracle_value"] + 1e-9


@pytest.mark.parametrize("task", ["basic_triage", "mass_casualty"])
def test_oracle_team_replays_the_bound(task):
    from agents.ed_evaluation import run_episode, team_context
    from envs.ed_triage_v0 import parallel_env

    env = parallel_env(task=task)
    for seed in (0, 7):
        team = EdOracleTeam(team_context(env)).policies()
        info = run_episode(env, team, seed)
        bound = solve(get_task(task), seed)
        assert info["grader"]["cumulative_reward"] == pytest.approx(bound.value)
        assert info["kpis"]["adverse_events"] == 0 and info["kpis"]["under_triage_events"] == 0


V1_ORACLE_TASKS = ("mass_casualty", *SCENARIOS)


@pytest.mark.parametrize(("version", "task"),
                         [("v1", t) for t in V1_ORACLE_TASKS] + [("v0", "generated")])  # fmt: skip
def test_oracle_team_replays_the_bound_of_each_episode_task(version, task):
    # Suite scenarios and ``generated`` draw a new task per episode seed: the team must
    # solve the episode's task (env.task_for), not the env's template (seed 0's draw).
    from agents.ed_evaluation import run_episode, team_context
    from envs.ed_triage_v1 import ED_ENVS

    env = ED_ENVS[version](task=task)
    for seed in (10000, 10001):
        team = EdOracleTeam(team_context(env)).policies()
        info = run_episode(env, team, seed)
        bound = solve(env.task_for(seed), seed, env.config)
        assert env.task == env.task_for(seed)
        assert abs(info["grader"]["cumulative_reward"] - bound.value) <= 1e-9
        kpis = info["kpis"]
        assert kpis["adverse_events"] == 0 and kpis["under_triage_events"] == 0
        assert sum(kpis[f"illegal_{a}"] for a in AGENTS) == 0

"""``ed`` v1 (envs.ed_triage_v1): each new rule on hand-computed cases where it binds,
masks, hidden truth, the exact bound against brute force, the PettingZoo API and
determinism on every task, and invariants under random play."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from agents.base import PolicyContext
from agents.ed_evaluation import evaluate_teams
from agents.planner import EdPlanner
from envs.clinical.presentation import Drug
from envs.ed.bound import EdPlan, plan, replay
from envs.ed.config import DRUG_INDEX, V1, EdConfig, Place, Role
from envs.ed.engine import departures, masks, substep
from envs.ed.graders import normalised_score
from envs.ed.observation import CONSULTANT_FEATURES, encode_all
from envs.ed.suite import SCENARIOS
from envs.ed_triage_v1 import ED_TASKS, parallel_env
from envs.ed_triage_v1 import env as aec_env
from tests.ed_helpers import END, pat, scenario, state, tiny_task, triage

N, P, C = Role.NURSE, Role.PHARMACIST, Role.CONSULTANT
ASPIRIN = DRUG_INDEX[Drug.ASPIRIN]
BARE = EdConfig()  # v0 rules: each test switches on the mechanism it checks


def idle(s) -> tuple[int, int, int]:
    return END(N, s), END(P, s), END(C, s)


def advance(s) -> None:
    """END for everyone until time advances."""
    step = s.step
    while s.step == step:
        substep(s, idle(s))


# ------------------------------------------------------------------ LWBS and death
def test_lwbs_at_the_patience_of_the_true_category():
    # A true category 4 (reporting 1) with patience 2 leaves when its wait reaches 2;
    # the category 3 beside it (patience 0 = never) stays.
    sc = scenario(tiny_task(pat("A", 4, reported_severity=1), pat("B", 3), steps=5))
    s = state(sc, replace(BARE, lwbs_patience=(0, 0, 0, 2, 0)))
    advance(s)
    assert s.place[0] == Place.WAITING
    res = None
    while s.step < 2:
        res = substep(s, idle(s))
    assert s.place.tolist() == [Place.LWBS, Place.WAITING]
    assert res.shared["lwbs"] == pytest.approx(-0.1) and s.lwbs == 1
    assert not masks(s)[C][0]  # gone: not servable


def test_death_after_death_wait_steps_critical():
    # Category 1 from arrival (step 0) with death_wait 2 dies entering step 2; a
    # category 2 beside it does not.
    sc = scenario(tiny_task(pat("A", 1), pat("B", 2), steps=4))
    s = state(sc, replace(BARE, death_wait=2))
    advance(s)
    assert s.place[0] == Place.WAITING
    step = s.step
    while s.step == step:
        res = substep(s, idle(s))
    assert s.place.tolist() == [Place.DIED, Place.WAITING]
    assert res.shared["death"] == pytest.approx(-1.0) and s.deaths == 1


def test_death_clock_starts_at_deterioration():
    # Category 2 deteriorating at step 1 (countdown 1) dies at step 1 + 2 = 3.
    sc = scenario(tiny_task(pat("A", 2, deterioration_countdown=1), steps=5))
    s = state(sc, replace(BARE, death_wait=2))
    advance(s)
    assert s.severity[0] == 1 and s.crit_since[0] == 1
    advance(s)
    assert s.place[0] == Place.WAITING
    advance(s)
    assert s.place[0] == Place.DIED


def test_departures_is_pure_and_disjoint():
    sc = scenario(tiny_task(pat("A", 1), pat("B", 5), steps=5))
    s = state(sc, replace(BARE, death_wait=1, lwbs_patience=(1, 0, 0, 0, 1)))
    s.step = 1  # both past their limits: A dies (death first), B leaves
    died, left = departures(s)
    assert died.tolist() == [True, False] and left.tolist() == [False, True]
    assert s.place.tolist() == [Place.WAITING, Place.WAITING]  # not moved by the query


# ------------------------------------------------------------------ treatment time
def test_treatment_holds_the_doctor_for_its_steps():
    sc = scenario(tiny_task(pat("A", 3), pat("B", 3), steps=5))
    s = state(sc, replace(BARE, treatment_steps=(3, 3, 3, 3, 3)))
    substep(s, (END(N, s), END(P, s), 0))  # serve A at step 0: busy through step 2
    assert s.place[0] == Place.SERVED and s.step == 1  # everyone done: time advanced
    assert s.budget[C] == 0 and not masks(s)[C][1]
    advance(s)
    assert s.step == 2 and s.budget[C] == 0 and not masks(s)[C][1]
    advance(s)  # step 3: free again
    assert s.budget[C] == 1 and masks(s)[C][1]


# ------------------------------------------------------------------ triage gating
def test_serving_needs_triage_and_end_waits_for_the_nurse():
    sc = scenario(tiny_task(pat("A", 2), pat("B", 4), steps=3))
    s = state(sc, replace(BARE, serve_requires_triage=True))
    assert not masks(s)[C][:2].any()  # nobody triaged: nothing to serve
    substep(s, (triage(1, 4), END(P, s), END(C, s)))  # triage B; consultant passes
    assert masks(s)[C][1] and not masks(s)[C][0]
    # END while the nurse can still triage A is a pass, not the end of the turn.
    substep(s, (triage(0, 2), END(P, s), END(C, s)))
    assert not s.ended[C] and s.step == 0
    assert masks(s)[C][0] and masks(s)[C][1]


def test_end_ends_the_turn_once_the_nurse_is_done():
    sc = scenario(tiny_task(pat("A", 2), pat("B", 4), steps=3))
    s = state(sc, replace(BARE, serve_requires_triage=True, triage_capacity=1))
    substep(s, (triage(1, 4), END(P, s), END(C, s)))  # nurse spent her one triage
    res = substep(s, (END(N, s), END(P, s), END(C, s)))
    assert res.advanced and s.place[1] == Place.WAITING  # B not served: END ended it


# ------------------------------------------------------------------ critical clock
@pytest.mark.parametrize(("clock", "at", "expected"), [
    (True, 1, 0.875),  # deteriorates entering step 2: not yet, f(2, 1)
    (True, 2, 0.75),  # critical for 0 steps: min(f1(0)=1.0, f2(2)=0.75)
    (True, 3, 0.6),  # min(f1(1)=0.6, f2(3)=0.625)
    (False, 2, 0.2),  # v0: f1(2) on the arrival clock
])  # fmt: skip
def test_critical_clock_values_a_deteriorated_patient_from_the_turn(clock, at, expected):
    sc = scenario(tiny_task(pat("A", 2, deterioration_countdown=2), steps=5))
    s = state(sc, replace(BARE, critical_clock=clock))
    while s.step < at:
        advance(s)
    substep(s, (END(N, s), END(P, s), 0))
    assert s.served[0].reward == pytest.approx(expected)


# ------------------------------------------------------------------ hidden truth
def test_consultant_sees_no_self_report_before_triage():
    sc = scenario(tiny_task(pat("A", 2, reported_severity=5), steps=3))
    col = CONSULTANT_FEATURES.index("visible_category")
    v0 = encode_all(state(sc, BARE))[C]
    v1 = encode_all(state(sc, replace(BARE, consultant_sees_self_report=False)))[C]
    assert v0[col] == 5 and v1[col] == 0


@pytest.mark.parametrize("task", ED_TASKS)
def test_observations_do_not_depend_on_the_hidden_truth(task):
    env = parallel_env(task=task, normaliser="static")
    env.reset(seed=3)
    s = env.state
    for _ in range(25):  # some way into the episode
        if s.done:
            break
        m = masks(s)
        substep(s, tuple(int(np.flatnonzero(m[r])[0]) for r in Role), start_masks=m)
    before = encode_all(s)
    waiting = s.place == Place.WAITING
    s.severity[waiting] = 6 - s.severity[waiting]  # change every waiting true category
    s.arrival_severity[:] = 3
    after = encode_all(s)
    for r in Role:
        np.testing.assert_array_equal(before[r], after[r])


def test_planner_plays_from_observations_only():
    # No task (so no schedule to peek at): the planner still plays a whole episode.
    env = parallel_env(task="night_shift")
    obs, _ = env.reset(seed=1)
    planner = EdPlanner(PolicyContext(task=None, ruleset="ed", n_slots=env.n_slots,
                                      config=env.config))  # fmt: skip
    planner.reset(1)
    while env.agents:
        acts = {a: int(np.flatnonzero(obs[a]["action_mask"])[-1]) for a in env.agents}
        acts["triage_nurse"] = int(np.flatnonzero(obs["triage_nurse"]["action_mask"])[0])
        acts["consultant"] = planner.act(obs["consultant"])
        assert obs["consultant"]["action_mask"][acts["consultant"]]
        obs, *_ = env.step(acts)
    assert env.state.served


# ------------------------------------------------------------------ the bound
def brute_force(sc, config) -> float:
    """Max Σ serve reward over every serve time, triage time (≤ serve) and dose time,
    each played through the engine by the plan player."""
    horizon, pats = sc.task.max_steps, sc.patients
    serve_opts = [[None, *range(p.arrival_step, horizon)] for p in pats]
    dosable = [p.slot for p in pats if p.deterioration_countdown > 0 and sc.indicated[p.slot] >= 0]
    best = 0.0
    for serve_at in itertools.product(*serve_opts):
        tri_opts = [[None] if t is None else list(range(p.arrival_step, t + 1))
                    for p, t in zip(pats, serve_at, strict=True)]  # fmt: skip
        for tri_at in itertools.product(*tri_opts):
            for dose_at in itertools.product(*([None, *range(horizon)] for _ in dosable)):
                serve = tuple(tuple(s for s, t in enumerate(serve_at) if t == k)
                              for k in range(horizon))  # fmt: skip
                dose = tuple(tuple((s, int(sc.indicated[s])) for s, t in
                                   zip(dosable, dose_at, strict=True) if t == k)
                             for k in range(horizon))  # fmt: skip
                tri = tuple(tuple((s, pats[s].severity) for s, t in enumerate(tri_at) if t == k)
                            for k in range(horizon))  # fmt: skip
                tri = tuple(a + tuple(x for x in b if x not in a) for a, b in
                            zip(tri, ((x for x in d) for d in
                                      (tuple((s, pats[s].severity) for s, _ in dd)
                                       for dd in dose)), strict=True))  # fmt: skip
                st = replay(sc, config, EdPlan(tri, dose, serve, 0.0))
                best = max(best, sum(r.reward for r in st.served))
    return best


V1_CASES = {
    # One doctor, 2-step treatments: serving the category 1 blocks the next step.
    "treatment": (tiny_task(pat("A", 1), pat("B", 2), pat("C", 3, step=1), steps=3),
                  replace(BARE, treatment_steps=(2, 2, 2, 2, 2)), {}),
    # The category 5 leaves at wait 1 and the second category 1 dies at wait 1.
    "departures": (tiny_task(pat("A", 1), pat("B", 1), pat("C", 5), steps=3),
                   replace(BARE, death_wait=1, lwbs_patience=(0, 0, 0, 0, 1)), {}),
    # One triage per step and triage-gated serving, two doctors.
    "triage": (tiny_task(pat("A", 2), pat("B", 3), pat("C", 1, step=1), steps=3, doctors=2),
               replace(BARE, serve_requires_triage=True, triage_capacity=1), {}),
    # Deterioration to category 1 on the critical clock, with the drug.
    "critical": (tiny_task(pat("A", 2, deterioration_countdown=1), pat("B", 3), steps=3),
                 replace(BARE, critical_clock=True, death_wait=2), {0: ASPIRIN}),
    "all_v1": (tiny_task(pat("A", 2, deterioration_countdown=1), pat("B", 4),
                         pat("C", 1, step=1), steps=3),
               replace(V1, lwbs_patience=(0, 0, 0, 2, 0)), {0: ASPIRIN}),
}  # fmt: skip


@pytest.mark.parametrize("case", V1_CASES)
def test_v1_ilp_equals_brute_force(case):
    task, config, indicated = V1_CASES[case]
    sc = scenario(task, indicated=indicated)
    p = plan(sc, config)
    st = replay(sc, config, p)
    assert sum(r.reward for r in st.served) == pytest.approx(p.objective)
    assert p.objective == pytest.approx(brute_force(sc, config))


def test_each_v1_constraint_binds():
    # Switching a mechanism off raises the bound of its case: the constraint binds.
    for case, field, off in (("treatment", "treatment_steps", None),
                             ("departures", "lwbs_patience", None),
                             ("departures", "death_wait", 0),
                             ("triage", "serve_requires_triage", False)):  # fmt: skip
        task, config, indicated = V1_CASES[case]
        sc = scenario(task, indicated=indicated)
        on = plan(sc, config).objective
        relaxed = plan(sc, replace(config, **{field: off})).objective
        assert relaxed > on + 1e-9, (case, field)


FAST_TASKS = ("mass_casualty", "night_shift")
"""Tasks of the costlier checks in the default suite (all of them under -m slow)."""
EVERY_TASK = [t if t in FAST_TASKS else pytest.param(t, marks=pytest.mark.slow) for t in ED_TASKS]


@pytest.mark.parametrize("task", EVERY_TASK)
def test_bound_dominates_every_team_v1(task):
    teams = {"random": "nurse=random,pharmacist=random,consultant=random",
             "heuristic": None, "planner": "planner"}  # fmt: skip
    rows = evaluate_teams(task, teams, range(2), version="v1")
    for r in rows:
        assert r["serve_reward"] <= r["oracle_value"] + 1e-9
        assert 0.0 <= r["pct_of_oracle"] <= 100.0 + 1e-9


def test_normalised_score_literals():
    assert normalised_score(7.0, 4.0, 10.0) == pytest.approx(0.5)
    assert normalised_score(4.0, 4.0, 10.0) == 0.0
    assert normalised_score(10.0, 4.0, 10.0) == 1.0
    assert normalised_score(3.0, 3.0, 3.0) == 1.0  # no headroom: nothing to separate


# ------------------------------------------------------------------ API, determinism, fuzz
@pytest.mark.parametrize("task", ED_TASKS)
def test_pettingzoo_api_and_seed(task):
    parallel_api_test(parallel_env(task=task, normaliser="static"), num_cycles=200)
    api_test(aec_env(task=task, normaliser="static"), num_cycles=30)
    parallel_seed_test(lambda: parallel_env(task=task, normaliser="static"), num_cycles=50)


@pytest.mark.parametrize("task", EVERY_TASK)
def test_seeded_episodes_are_deterministic(task):
    a = evaluate_teams(task, {"planner": "planner"}, [5], version="v1")[0]
    b = evaluate_teams(task, {"planner": "planner"}, [5], version="v1")[0]
    assert a == b


@pytest.mark.parametrize("task", ED_TASKS)
def test_invariants_under_random_play(task):
    env = parallel_env(task=task, normaliser="static")
    rng = np.random.default_rng(0)
    for seed in range(2):
        obs, _ = env.reset(seed=seed)
        s = env.state
        low, high = env.config.reward_bounds(env.n_slots, s.doctors)
        while env.agents:
            acts = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}
            if rng.random() < 0.05:
                acts["consultant"] = int(rng.integers(-2, env.n_slots + 3))  # junk is a no-op
            obs, rew, *_ = env.step(acts)
            assert low - 1e-9 <= rew["consultant"] <= high + 1e-9
            assert all(b >= 0 for b in s.budget)
            assert s.busy is None or s.busy[s.step] <= s.doctors
            counts = np.bincount(s.place, minlength=len(Place))
            assert counts.sum() == s.n
            assert counts[Place.SERVED] == len(s.served)
            assert counts[Place.LWBS] == s.lwbs and counts[Place.DIED] == s.deaths
            served = [r.slot for r in s.served]
            assert len(set(served)) == len(served)


def test_suite_has_six_documented_scenarios():
    assert len(SCENARIOS) >= 6
    for sc in SCENARIOS.values():
        assert sc.challenge and sc.params.name == sc.name
        assert parallel_env(task=sc.name).task.name == sc.name


@pytest.mark.parametrize("task", ["mass_casualty", "night_shift"])
def test_gymnasium_consultant_env_plays_v1(task):
    from gymnasium.utils.env_checker import check_env

    from envs.gym_ed import EdConsultantEnv

    env = EdConsultantEnv(task=task, version="v1", normaliser="static")
    assert env.env.config.is_v1
    check_env(env, skip_render_check=True)


def test_llm_consultant_prompt_reads_a_v1_observation():
    from llm_policy.prompts import ed_consultant_messages

    env = parallel_env(task="misreporters", normaliser="static")
    obs, _ = env.reset(seed=0)
    text = ed_consultant_messages(obs["consultant"])[1]["content"]
    assert "urgency unknown, untriaged" in text  # nobody triaged yet: no self-report shown


def test_suite_cli_lists_and_writes_the_issue_schema(tmp_path, capsys):
    import json

    from experiments import suite

    assert suite.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(SCENARIOS)
    assert suite.main(["--seeds", "2", "--tasks", "basic_triage", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "suite.json").read_text())
    assert (tmp_path / "suite.md").exists()
    assert [r["policy"] for r in doc["rows"]] == ["random", "heuristic", "planner", "oracle"]
    for r in doc["rows"]:
        assert set(r) == {"task", "policy", "seeds", "pct_of_bound", "pct_of_bound_ci95",
                          "normalised", "normalised_ci95"}  # fmt: skip
        assert r["seeds"] == 2
    rows = {r["policy"]: r for r in doc["rows"]}
    assert rows["random"]["normalised"] == 0.0 and rows["oracle"]["normalised"] == 1.0
    assert rows["oracle"]["pct_of_bound"] == 100.0
    assert [set(p) for p in doc["paired"]] == [{"task", "mean_diff", "ci95"}]

"""The ``ed`` v1 task score: the share of the clairvoyant bound's serve reward
(:func:`envs.ed.graders.serve_share`), the grader kept as ``grader_score``; v0 keeps
the grader as its score. Hand-computed cases, the oracle at exactly 1, and the score
ordering random < heuristic on mass_casualty."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ed_evaluation import RANDOM_TEAM, evaluate_teams, run_episode, team_context
from agents.oracle_ed import EdOracleTeam
from envs.ed.bound import plan, solve
from envs.ed.config import EdConfig, Role
from envs.ed.engine import substep
from envs.ed.graders import grade, grader_score, serve_share
from envs.ed_triage_v0 import EdTriageParallelEnv
from envs.ed_triage_v1 import EdTriageV1ParallelEnv
from tests.ed_helpers import END, pat, scenario, state, tiny_task

N, P, C = Role.NURSE, Role.PHARMACIST, Role.CONSULTANT
TWO_STEP = EdConfig(treatment_steps=(2,) * 5)
"""A v1 config (one mechanism on: a serve holds its doctor for 2 steps)."""


def _play(config: EdConfig, serves: dict[int, int]):
    """A (cat 3) and B (cat 4) at step 0, one doctor, 3 steps; ``serves``: step → slot."""
    s = state(scenario(tiny_task(pat("A", 3), pat("B", 4), steps=3)), config)
    while not s.done:
        slot = serves.get(s.step)
        substep(s, (END(N, s), END(P, s), END(C, s) if slot is None else slot))
    return s


def test_serve_share_literals_and_the_zero_bound():
    assert serve_share(1.308, 1.37) == pytest.approx(0.954744525547)
    assert serve_share(1.37, 1.37) == 1.0
    assert serve_share(0.0, 2.0) == 0.0
    assert serve_share(0.0, 0.0) == 1.0  # nothing to earn: nothing lost


def test_v1_score_of_a_hand_computed_episode():
    # Serving B first: B at wait 0 (0.60), the doctor busy through step 1, A at wait 2
    # (0.85 − 2·0.071 = 0.708): R = 1.308. The bound serves A first: 0.85 + B at wait 2
    # (0.60 − 2·0.040 = 0.52) = 1.37. Score 1.308 / 1.37 = 0.95474…; the easy grader
    # (kept as grader_score) is round(min(0.999, 1.308 / 1.37), 4) = 0.9547.
    sc = scenario(tiny_task(pat("A", 3), pat("B", 4), steps=3))
    assert plan(sc, TWO_STEP).objective == pytest.approx(1.37)
    s = _play(TWO_STEP, {0: 1, 2: 0})
    g = grade(s, 1.37)
    assert g["cumulative_reward"] == pytest.approx(1.308)
    assert g["score"] == pytest.approx(1.308 / 1.37, abs=1e-12)
    assert g["grader_score"] == 0.9547 and grader_score(g) == 0.9547
    # The bound's own schedule scores exactly 1; its grader is clamped at 0.999.
    best = grade(_play(TWO_STEP, {0: 0, 2: 1}), 1.37)
    assert best["cumulative_reward"] == pytest.approx(1.37)
    assert best["score"] == pytest.approx(1.0, abs=1e-12) and best["grader_score"] == 0.999


def test_v1_score_with_a_zero_bound_is_one():
    # Nobody served and nothing to earn (bound 0): 1.0, not a division by zero.
    g = grade(_play(TWO_STEP, {}), 0.0)
    assert g["cumulative_reward"] == 0.0 and g["score"] == 1.0
    assert g["grader_score"] == 0.001  # the easy grader's floor when nothing was served


def test_v0_config_keeps_the_grader_as_its_score():
    # Same serves without the v1 mechanism: B at 0 (0.60), A at 2 (0.708), one step
    # each. EdConfig() is v0: no grader_score key, score = the easy grader.
    s = _play(EdConfig(), {0: 1, 2: 0})
    g = grade(s, 1.37)
    assert "grader_score" not in g
    assert g["score"] == 0.9547 == grader_score(g)


def _oracle_final(env: EdTriageParallelEnv, seed: int) -> dict:
    team = EdOracleTeam(team_context(env)).policies()
    return run_episode(env, team, seed)


@pytest.mark.parametrize(
    ("task", "seeds"),
    [("mass_casualty", (0, 7, 10000)), ("basic_triage", (1, 2)), ("night_shift", (3, 11)),
     ("sepsis_wave", (5,)), ("long_shift", (8,))],
)  # fmt: skip
def test_oracle_team_scores_one_on_v1(task, seeds):
    env = EdTriageV1ParallelEnv(task=task)
    for seed in seeds:
        final = _oracle_final(env, seed)
        bound = solve(env.task, seed, env.config)
        assert final["score"] == pytest.approx(1.0, abs=1e-9), (task, seed)
        assert final["grader"]["score"] == final["score"]
        assert bound.score == pytest.approx(1.0, abs=1e-9)  # the rows' oracle_score
        # The grader is still reported, the bound's schedule graded as before.
        assert final["grader_score"] == final["grader"]["grader_score"]
        assert final["grader_score"] == grader_score(bound.grader)


def test_v1_score_is_the_serve_share_of_every_team_and_ranks_random_below_heuristic():
    teams = {"random": RANDOM_TEAM, "heuristic": None}
    rows = evaluate_teams("mass_casualty", teams, range(20), version="v1")
    for r in rows:
        assert r["score"] == pytest.approx(r["serve_reward"] / r["oracle_value"], abs=1e-9)
        assert 0.0 <= r["score"] <= 1.0 + 1e-9
        assert r["oracle_score"] == pytest.approx(1.0, abs=1e-9)
    mean = {t: np.mean([r["score"] for r in rows if r["team"] == t]) for t in teams}
    assert mean["random"] < mean["heuristic"] < 1.0
    # The grader column is the old formula, not the share.
    assert any(abs(r["grader_score"] - r["score"]) > 0.01 for r in rows)


def test_v0_env_score_is_the_grader():
    env = EdTriageParallelEnv(task="mass_casualty")
    final = _oracle_final(env, 3)
    assert "grader_score" not in final["grader"]
    assert final["score"] == final["grader_score"] == final["grader"]["score"]
    assert final["score"] < 0.999  # the hard grader, not a share of the bound


def test_a_v1_env_with_a_v0_config_keeps_the_grader():
    env = EdTriageV1ParallelEnv(task="basic_triage", config=EdConfig())
    final = _oracle_final(env, 4)
    assert "grader_score" not in final["grader"]
    assert final["score"] == final["grader_score"]


def test_static_normaliser_score_is_a_lower_bound_of_the_exact_share():
    # static: R over Σ each patient's wait-0 reward (no ILP), ≥ the exact bound.
    for seed in (0, 1, 2):
        finals = {}
        for normaliser in ("oracle", "static"):
            env = EdTriageV1ParallelEnv(task="mass_casualty", normaliser=normaliser)
            team = EdOracleTeam(team_context(env)).policies()
            finals[normaliser] = run_episode(env, team, seed)
        exact, static = finals["oracle"], finals["static"]
        r = static["grader"]["cumulative_reward"]
        assert r == exact["grader"]["cumulative_reward"]
        assert static["oracle_value"] >= exact["oracle_value"]
        assert static["score"] == pytest.approx(r / static["oracle_value"], abs=1e-12)
        assert static["score"] <= exact["score"] + 1e-12
        assert static["grader_score"] == static["grader"]["grader_score"]

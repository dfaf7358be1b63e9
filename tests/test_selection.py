"""Decisions on validation seeds (agents.rllib.selection): the teacher ``--teacher auto``
picks, the per-role choice between trained module and clone, and their guards."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from agents.ed_evaluation import evaluate_teams  # noqa: E402
from agents.rllib import selection as sel  # noqa: E402
from envs.ed.config import AGENTS  # noqa: E402
from tests.ed_helpers import slot_scorers  # noqa: E402


def test_validation_seeds_are_apart_from_training_and_evaluation_seeds():
    from agents.frontdoor.config import RunConfig
    from agents.rllib.training import TRAIN_SEED_LIMIT

    seeds = sel.validation_seeds(30)
    assert seeds[0] == 20_000 and len(seeds) == 30 and min(seeds) >= TRAIN_SEED_LIMIT
    cfg = RunConfig()
    assert not set(seeds) & set(cfg.seeds())  # the default evaluation seeds


def test_choose_teacher_takes_the_planner_where_it_serves_more():
    """night_shift: the planner serves far more of the bound than the heuristic team
    (86.6 vs 74.4 % on the 50 evaluation seeds); the choice and its means are those of
    the evaluation loop on the validation seeds."""
    best, means = sel.choose_teacher("night_shift", "v1", 4)
    rows = evaluate_teams("night_shift", {"planner": "planner"}, sel.validation_seeds(4),
                          version="v1")  # fmt: skip
    assert best == "planner" and means["planner"] > means["heuristic"]
    assert means["planner"] == pytest.approx(np.mean([r["pct_of_oracle"] for r in rows]))


def test_select_team_keeps_the_better_module_of_each_role():
    """Modules with a dominant hint prior play exactly the heuristic team; untrained ones
    play badly. As the trained modules they are all kept (the all-trained mix is the
    heuristic team); as the clones, the mix kept serves at least as much as all-clone
    and more than all-untrained."""
    good = slot_scorers("basic_triage", hints=True, hint_weight=50.0)
    bad = slot_scorers("basic_triage", hints=True, hint_weight=0.0)
    kept = sel.select_team(good, bad, "basic_triage", "v0", 3)
    assert kept["roles"] == dict.fromkeys(AGENTS, sel.TRAINED)
    assert len(kept["means"]) == 8 and kept["selected"] == max(kept["means"].values())
    heuristic = evaluate_teams("basic_triage", {"h": None}, sel.validation_seeds(3), version="v0")
    assert kept["trained"] == pytest.approx(np.mean([r["pct_of_oracle"] for r in heuristic]))
    assert kept["trained"] > kept["clone"]
    swapped = sel.select_team(bad, good, "basic_triage", "v0", 3)
    assert swapped["roles"] != dict.fromkeys(AGENTS, sel.TRAINED)
    assert swapped["selected"] >= swapped["clone"] > swapped["trained"]
    assert "validation seeds 20000–20002" in sel.describe(swapped)


def test_validation_guards_are_named():
    from agents.frontdoor.config import RunConfig
    from agents.rllib.training import TrainSettings

    with pytest.raises(ValueError, match="overlap the validation seeds"):
        RunConfig(task="night_shift", eval_seed_start=20_010).validate()
    with pytest.raises(ValueError, match="--validation-episodes > 0"):
        TrainSettings(ruleset="ed", init="bc", teacher="auto", validation_episodes=0).validate()
    with pytest.raises(ValueError, match="--validation-episodes must be >= 0"):
        TrainSettings(ruleset="ed", validation_episodes=-1).validate()
    RunConfig(task="night_shift", eval_seed_start=20_010, validation_episodes=0,
              teacher="heuristic").validate()  # fmt: skip
    RunConfig(task="night_shift", eval_seed_start=20_030).validate()


def test_select_modules_names_what_is_missing(tmp_path, capsys):
    from experiments.select_modules import main

    assert main([str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err

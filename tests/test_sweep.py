"""Tune sweep with run.py's flags and defaults: on a tiny budget it writes Tune's
layout, picks the trial whose greedy team scores best on held-out seeds (checked by
replaying every trial's checkpoint here), and its best_config.json trains the same
kind of team with run.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from experiments.run import RunConfig  # noqa: E402
from experiments.run import main as run_main  # noqa: E402
from experiments.sweep import SweepConfig, held_out_rows, select_best  # noqa: E402
from experiments.sweep import main as sweep_main  # noqa: E402

SELECT = ["--select-episodes", "2", "--select-seed-start", "20000"]
SMALL = ["--batch-sizes", "200", "400", "--minibatch-sizes", "100", "--envs-per-runner", "2"]
"""Small batches: start-up, not sampling, is then most of a trial's time."""


@pytest.fixture(scope="module", autouse=True)
def _ray():
    import ray

    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ed_sweep(tmp_path_factory) -> Path:
    """Two one-iteration trials of the default (ed team) sweep."""
    pytest.importorskip("optuna")  # pinned in requirements.txt: the Optuna path is tested
    root = tmp_path_factory.mktemp("sweep") / "s"
    assert sweep_main(["--task", "basic_triage", "--num-samples", "2", "--train-iters", "1",
                       "--grace-period", "1", "--num-env-runners", "0", "--output", str(root),
                       "--search", "optuna", *SELECT, *SMALL]) == 0  # fmt: skip
    return root


def test_sweep_shares_run_defaults_and_flags():
    sweep, run = SweepConfig(), RunConfig()
    for name in ("task", "ruleset", "train_iters", "hints", "algo", "seed", "eval_episodes"):
        assert getattr(sweep, name) == getattr(run, name), name
    assert sweep.ruleset == "ed" and sweep.task == "mass_casualty"


def test_select_best_is_the_highest_held_out_mean():
    trials = [{"trial": t, "held_out": {"score": s, "pct_of_oracle": p}}
              for t, s, p in (("a", 0.50, 90.0), ("b", 0.70, 80.0), ("c", 0.60, 99.0),
                              ("d", 0.70, 85.0))]  # fmt: skip
    assert select_best(trials, "score")["trial"] == "d"  # tie on score: pct decides
    assert select_best(trials, "pct_of_oracle")["trial"] == "c"
    with pytest.raises(ValueError, match="no trial finished"):
        select_best([], "score")


def test_sweep_picks_the_best_held_out_trial(ed_sweep):
    summary = json.loads((ed_sweep / "sweep_summary.json").read_text())
    best_config = json.loads((ed_sweep / "best_config.json").read_text())
    assert "held-out seeds 20000–20001" in summary["selected_on"]
    trials = summary["trials"]
    assert len(trials) == 2 and summary["trial_errors"] == 0
    # Replay every trial's checkpoint on the selection seeds, independently of the sweep.
    cfg = RunConfig(**{k: v for k, v in best_config.items() if k in ("task", "ruleset")})
    scores = {}
    for t in trials:
        rows = held_out_rows(cfg, Path(t["checkpoint"]), [20000, 20001])
        scores[t["trial"]] = sum(r["score"] for r in rows) / len(rows)
        assert t["held_out"]["score"] == pytest.approx(scores[t["trial"]])
        params = json.loads((Path(t["path"]) / "params.json").read_text())
        assert t["hyperparameters"]["lr"] == params["lr"]
        assert t["hyperparameters"]["width"] == params["_model_config"]["width"]
    best = max(scores.values())
    winners = [t for t in trials if scores[t["trial"]] == best]
    # best_config.json carries the hyperparameters of a trial with the best held-out score.
    assert any(all(best_config[k] == v for k, v in t["hyperparameters"].items())
               for t in winners)  # fmt: skip
    if len(set(scores.values())) > 1:  # (a worst-trial pick would land here)
        losers = [t for t in trials if scores[t["trial"]] < best]
        assert not any(all(best_config[k] == v for k, v in t["hyperparameters"].items())
                       for t in losers)  # fmt: skip


def test_sweep_then_run_trains_the_same_team(ed_sweep, tmp_path):
    best = json.loads((ed_sweep / "best_config.json").read_text())
    assert best["ruleset"] == "ed" and best["hints"] is True and best["task"] == "basic_triage"
    out = tmp_path / "run"
    assert run_main(["--config", str(ed_sweep / "best_config.json"), "--train-iters", "1",
                     "--num-env-runners", "0", "--eval-episodes", "1", "--compare", "ppo",
                     "--output", str(out)]) == 0  # fmt: skip
    used = json.loads((out / "config.json").read_text())
    for key in ("ruleset", "task", "hints", "lr", "width", "train_batch_size", "minibatch_size"):
        assert used[key] == best[key], key
    modules = out / "checkpoint" / "learner_group" / "learner" / "rl_module"
    assert sorted(p.name for p in modules.iterdir() if p.is_dir()) == [
        "consultant", "pharmacist", "triage_nurse",
    ]  # fmt: skip


def test_sweep_refuses_what_it_cannot_do(tmp_path, capsys):
    assert sweep_main(["--no-train", "--output", str(tmp_path / "x")]) == 2
    assert "a sweep trains new trials" in capsys.readouterr().err
    assert sweep_main(["--select-seed-start", "5", "--output", str(tmp_path / "x")]) == 2
    assert "training seeds" in capsys.readouterr().err
    assert sweep_main(["--batch-sizes", "100", "--output", str(tmp_path / "x")]) == 2
    assert "--minibatch-sizes must all be <=" in capsys.readouterr().err


def test_bad_config_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text('{"learning_rate": 0.1}')
    assert run_main(["--config", str(bad)]) == 2
    assert "unknown fields ['learning_rate']" in capsys.readouterr().err
    bad.write_text("{not json")
    assert run_main(["--config", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err

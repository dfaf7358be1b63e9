"""Tune sweep on a tiny budget writes Tune's layout and a best_config.json that the
front door accepts."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray.tune")

from experiments.run import main as run_main  # noqa: E402
from experiments.sweep import main as sweep_main  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _ray():
    import ray

    yield
    ray.shutdown()


def test_tiny_sweep_then_train_with_best_config(tmp_path):
    pytest.importorskip("optuna")  # pinned in requirements.txt: the Optuna path is tested
    search = "optuna"
    assert sweep_main(["--task", "basic_triage", "--num-samples", "2", "--max-iters", "1",
                       "--grace-period", "1", "--storage", str(tmp_path), "--name", "s",
                       "--search", search]) == 0  # fmt: skip
    root = tmp_path / "s"
    trials = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("PPO")]
    assert len(trials) == 2
    assert all((t / "result.json").exists() and (t / "params.json").exists() for t in trials)
    best = json.loads((root / "best_config.json").read_text())
    assert set(best) == {"task", "ruleset", "lr", "entropy_coeff", "clip_param",
                         "train_batch_size", "minibatch_size", "width"}  # fmt: skip
    assert 1e-4 <= best["lr"] <= 3e-3 and best["width"] in (32, 64, 128)
    widths = {json.loads((t / "params.json").read_text())["_model_config"]["width"]
              for t in trials}  # fmt: skip
    assert widths <= {32, 64, 128}

    out = tmp_path / "run"
    assert run_main(["--config", str(root / "best_config.json"), "--train-iters", "1",
                     "--num-env-runners", "0", "--eval-episodes", "1", "--compare", "ppo",
                     "--output", str(out)]) == 0  # fmt: skip
    used = json.loads((out / "config.json").read_text())
    assert used["lr"] == best["lr"] and used["width"] == best["width"]
    assert used["train_batch_size"] == best["train_batch_size"]


def test_bad_config_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text('{"learning_rate": 0.1}')
    assert run_main(["--config", str(bad)]) == 2
    assert "unknown fields ['learning_rate']" in capsys.readouterr().err
    bad.write_text("{not json")
    assert run_main(["--config", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err

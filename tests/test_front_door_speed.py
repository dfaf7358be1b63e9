"""experiments/front_door_speed.py on hand-made run directories: episodes per second
from the training records, the seed-paired score difference and the between-run one."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiments.front_door_speed import main


def _run(path, seconds: float, scores: list[float]) -> str:
    path.mkdir()
    training = [
        {"iteration": k, "timesteps": 500 * k, "episode_len_mean": 50.0, "episodes": 10 * k,
         "time_s": seconds * k / 2}
        for k in (1, 2)
    ]  # fmt: skip
    (path / "summary.json").write_text(json.dumps({"training": training}))
    rows = [{"policy": "ppo", "seed": 10000 + i, "score": s} for i, s in enumerate(scores)]
    rows += [{"policy": "heuristic", "seed": 10000, "score": 0.0}]
    pq.write_table(pa.Table.from_pylist(rows), path / "results.parquet")
    return str(path)


def test_speed_ratio_and_score_differences_by_seed_and_by_run(tmp_path, capsys):
    a1 = _run(tmp_path / "a1", 10.0, [0.5, 0.6, 0.7])
    a2 = _run(tmp_path / "a2", 10.0, [0.7, 0.8, 0.9])
    b1 = _run(tmp_path / "b1", 4.0, [0.6, 0.7, 0.8])
    b2 = _run(tmp_path / "b2", 6.0, [0.8, 0.9, 1.0])
    out = tmp_path / "speed.json"
    assert main([f"a={a1}", f"a={a2}", f"b={b1}", f"b={b2}", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    # 20 episodes each; a: 2 episodes/s; b: 5 and 3.33 episodes/s.
    b = doc["groups"]["b"]
    assert b["episodes_per_s"] == pytest.approx((5 + 20 / 6) / 2)
    assert b["ratio_to_first"] == pytest.approx((5 + 20 / 6) / 4)
    # Per seed: a 0.6 / 0.7 / 0.8, b 0.7 / 0.8 / 0.9 → +0.1 on every seed.
    assert b["score_minus_first"] == pytest.approx(0.1)
    assert b["seeds_won_lost"] == [3, 0]
    # By run: a 0.6, 0.8; b 0.7, 0.9 → +0.1, and with two runs each a wide interval.
    assert b["run_scores"] == pytest.approx([0.7, 0.9])
    assert b["runs_minus_first"] == pytest.approx(0.1)
    low, high = b["runs_minus_first_ci95"]
    assert low < 0 < 0.1 < high
    assert doc["groups"]["a"]["runs_minus_first_ci95"] is None
    assert "Welch 95 % CI" in capsys.readouterr().out


def test_speed_ratio_intervals_by_group_and_by_pair(tmp_path, capsys):
    import math

    # a: 2.0, 1.0 episodes/s (the machine slowed down); b: 6.0, 3.3 (same 20 episodes).
    a1, a2 = _run(tmp_path / "a1", 10.0, [0.5]), _run(tmp_path / "a2", 20.0, [0.5])
    b1, b2 = _run(tmp_path / "b1", 20 / 6, [0.5]), _run(tmp_path / "b2", 6.0, [0.5])
    out = tmp_path / "speed.json"
    argv = [f"a={a1}", f"b={b1}", f"a={a2}", f"b={b2}", "--paired", "--out", str(out)]
    assert main(argv) == 0
    b = json.loads(out.read_text())["groups"]["b"]
    # Geometric means: b sqrt(6 · 10/3), a sqrt(2 · 1).
    assert b["speed_ratio_geometric"] == pytest.approx(math.sqrt(20) / math.sqrt(2))
    low, high = b["speed_ratio_ci95"]
    assert low < b["speed_ratio_geometric"] < high
    # Pairs in order: 6 / 2 = 3 and (10/3) / 1; the drift cancels within each pair, so
    # the pairs' interval is far narrower than the groups'.
    assert b["pair_ratios"] == pytest.approx([3.0, 10 / 3])
    assert b["pair_ratio_geometric"] == pytest.approx(math.sqrt(10))
    p_low, p_high = b["pair_ratio_ci95"]
    assert low < p_low < math.sqrt(10) < p_high < high
    assert "speed by pair: 3.00, 3.33" in capsys.readouterr().out
    # Unequal counts cannot be paired.
    assert main([f"a={a1}", f"b={b1}", f"b={b2}", "--paired"]) == 2
    assert "--paired needs as many runs" in capsys.readouterr().err


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main([f"a={tmp_path / 'nope'}"]) == 2
    assert "summary.json not found" in capsys.readouterr().err

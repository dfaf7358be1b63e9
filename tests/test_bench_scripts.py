"""The benchmark script runs end to end on a tiny budget and writes its JSON."""

from __future__ import annotations

import json

import pytest

from experiments.bench_engine import main


def test_bench_engine_smoke(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--steps", "300", "--vector-steps", "2000", "--num-envs", "16",
                 "--repeats", "1", "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert {(r["task"], r["policy"]) for r in rows} == {
        (t, p) for t in ("basic_triage", "dynamic_queue", "mass_casualty")
        for p in ("severity_greedy", "random")
    }  # fmt: skip
    for r in rows:
        assert r["tool_state"] > 0 and r["gym"] > 0 and r["gym_vector"] > 0
        assert r["gym_vs_tool_state"] == r["gym"] / r["tool_state"]


def test_bench_engine_replay_plays_the_recorded_actions():
    """The engines-alone rows replay the policy's recorded actions: whole episodes,
    every action legal when replayed, the step count what was recorded."""
    import gymnasium as gym

    from experiments.bench_engine import record_actions, replay_gym

    played = record_actions("edmarl/BasicTriage-v0", "random", 50)
    assert sum(len(a) for _, a, _ in played) >= 50
    env = gym.make("edmarl/BasicTriage-v0")
    for seed, acts, ids in played:
        obs, _ = env.reset(seed=seed)
        assert ids == [p.patient_id for p in env.unwrapped.state.scenario.patients]
        for a in acts:
            assert obs["action_mask"][a]
            obs, _, done, _, _ = env.step(a)
        assert done
    assert replay_gym("edmarl/BasicTriage-v0", played) == sum(len(a) for _, a, _ in played)


@pytest.mark.slow
def test_bench_rllib_smoke(tmp_path):
    """The front-door benchmark (ed, run.py's settings) on a tiny batch: every figure
    present, the sampling profile's parts add up to the runner's sample time."""
    from experiments.bench_rllib import main as bench_rllib

    out = tmp_path / "bench_rllib.json"
    assert bench_rllib(["--runners", "0", "1", "--iters", "1", "--train-batch-size", "200",
                        "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["ruleset"] == "ed" and doc["hints"] is True
    assert [r["num_env_runners"] for r in doc["results"]] == [0, 1]
    for r in doc["results"]:
        assert r["env_steps"] >= 200 and r["episodes"] > 0
        assert r["sampled_steps_per_s"] > 0 and r["episodes_per_s"] > 0
        parts = r["sampling_profile"]
        assert all(parts[k] > 0 for k in ("env_step", "module_forward", "env_to_module",
                                          "module_to_env", "episode_bookkeeping"))  # fmt: skip
        assert abs(sum(parts.values()) - 1.0) < 1e-9 and parts["other"] > -0.05
        assert 0 < r["learner_profile"]["gae"] <= r["learner_profile"]["learner_connector"] < 1


def test_bench_evaluators_smoke(capsys):
    from experiments.bench_evaluators import main as bench_evaluators

    assert bench_evaluators(["--ruleset", "classic", "--task", "basic_triage", "--episodes", "2",
                             "--repeats", "1", "--compare", "fifo"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "1 policies × 2 seeds" in out and "rllib / loop =" in out

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
        assert r["gym_vs_tool_state_range"] == [r["gym_vs_tool_state"]] * 2  # one repeat
        assert r["per_repeat"] == [{k: r[k] for k in ("tool_state", "gym", "gym_vector")}]


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


def test_profile_engine_smoke(tmp_path):
    """The profiler runs on a tiny budget: per pair an unprofiled rate, a phase split
    that adds up to the total, and cProfile's top functions."""
    from experiments.profile_engine import main as profile_engine

    out = tmp_path / "profile.json"
    assert profile_engine(["--tasks", "basic_triage", "--steps", "200", "--repeats", "1",
                           "--top", "5", "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert [(r["task"], r["policy"]) for r in doc["results"]] == [
        ("basic_triage", "severity_greedy"), ("basic_triage", "random")
    ]  # fmt: skip
    for r in doc["results"]:
        ph = r["phases"]
        assert r["steps_per_s"] > 0 and ph["reset"] > 0 and ph["policy"] > 0
        assert ph["reset"] + ph["policy"] + ph["env_step"] == pytest.approx(ph["total"])
        assert 0 < len(r["top"]) <= 5 and all(t["calls"] > 0 for t in r["top"])
    with pytest.raises(SystemExit):
        profile_engine(["--steps", "0", "--out", str(out)])


@pytest.mark.slow
def test_bench_rllib_smoke(tmp_path):
    """The front-door benchmark (ed, run.py's settings) on a tiny batch: every figure
    present, the sampling profile's parts add up to the runner's sample time."""
    from experiments.bench_rllib import main as bench_rllib

    out = tmp_path / "bench_rllib.json"
    assert bench_rllib(["--runners", "0", "1", "--iters", "1", "--train-batch-size", "800",
                        "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["ruleset"] == "ed" and doc["hints"] is True
    assert [r["num_env_runners"] for r in doc["results"]] == [0, 1]
    for r in doc["results"]:
        assert r["env_steps"] >= 800 and r["episodes"] > 0  # 16 envs per runner: 50 steps each
        assert r["sampled_steps_per_s"] > 0 and r["episodes_per_s"] > 0
        parts = r["sampling_profile"]
        assert all(parts[k] > 0 for k in ("env_step", "module_forward", "env_to_module",
                                          "module_to_env", "episode_bookkeeping"))  # fmt: skip
        assert abs(sum(parts.values()) - 1.0) < 1e-9 and parts["other"] > -0.05
        assert 0 < r["learner_profile"]["gae"] <= r["learner_profile"]["learner_connector"] < 1


def test_bench_sampling_smoke(tmp_path):
    """The in-process sampling benchmark: every variant timed every repetition, ratios
    to the first, the modules' own action draw restored afterwards; bad sizes refused."""
    from agents.rllib import modules
    from experiments.bench_sampling import main as bench_sampling

    ours = modules._LogSoftmaxCategorical.sample
    out = tmp_path / "bench_sampling.json"
    assert bench_sampling(["--envs", "2", "3", "--draws", "--steps", "30", "--reps", "2",
                           "--out", str(out)]) == 0  # fmt: skip
    assert modules._LogSoftmaxCategorical.sample is ours
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert [(r["envs_per_runner"], r["draw"]) for r in rows] == [
        (2, "gumbel"), (3, "gumbel"), (2, "multinomial")]  # fmt: skip
    for r in rows:
        assert len(r["s_per_1000_steps"]) == 2 and r["median"] > 0
        assert r["vs_first"] == pytest.approx(r["median"] / rows[0]["median"])
    with pytest.raises(SystemExit, match="must be positive"):
        bench_sampling(["--envs", "0", "--out", str(out)])


def test_bench_evaluators_smoke(capsys):
    from experiments.bench_evaluators import main as bench_evaluators

    assert bench_evaluators(["--ruleset", "classic", "--task", "basic_triage", "--episodes", "2",
                             "--repeats", "1", "--compare", "fifo"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "1 policies × 2 seeds" in out and "rllib / loop =" in out

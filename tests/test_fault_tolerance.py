"""Fault tolerance, on the single-agent classic path and the multi-agent ed path alike:
a crashed EnvRunner is restarted and training goes on; a killed run resumes from its
last checkpoint without losing finished iterations; a corrupt train_state.json is
refused clearly (and the run still resumes once it is restored)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib")

from agents.rllib.training import TrainSettings, build_config, init_ray, register_envs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(train_batch_size=200, minibatch_size=100, envs_per_runner=2)


# The default suite runs one of each kind on the default path (ed, sampling ahead); the
# other rulesets and RLlib's plain PPO, whose checkpoint and restart code is the same
# as the default's, are behind `slow` (~80 s of the suite's 15 min on this machine).
RULESETS = [pytest.param("classic", marks=pytest.mark.slow), "ed"]


@pytest.mark.parametrize(("ruleset", "sample_ahead"),
                         [("classic", False), pytest.param("ed", False, marks=pytest.mark.slow),
                          ("ed", True)])  # fmt: skip
def test_env_runner_killed_mid_training_is_restarted(ruleset, sample_ahead):
    """With --sample-ahead the runner dies with a sample in flight: the batch is topped
    up with a synchronous sample once it is back."""
    import ray

    init_ray(None)
    register_envs()
    s = TrainSettings(task="basic_triage", ruleset=ruleset, num_env_runners=1,
                      hints=ruleset == "ed", sample_ahead=sample_ahead, **TINY)  # fmt: skip
    algo = build_config(s).build_algo()
    try:
        first = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        (pid,) = algo.env_runner_group.foreach_env_runner(
            lambda runner: os.getpid(), local_env_runner=False
        )
        os.kill(pid, signal.SIGKILL)  # a real crash of the remote EnvRunner process
        steps, group = first, algo.env_runner_group
        deadline = time.time() + 120
        while time.time() < deadline:  # the failed sample is dropped; the runner comes back
            result = algo.train()
            steps = result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", steps)
            restarted = group.num_remote_worker_restarts() >= 1
            if restarted and steps > first and group.num_healthy_remote_workers() == 1:
                break
        assert algo.env_runner_group.num_remote_worker_restarts() >= 1
        assert algo.env_runner_group.num_healthy_remote_workers() == 1
        new_pid = algo.env_runner_group.foreach_env_runner(
            lambda runner: os.getpid(), local_env_runner=False
        )[0]
        assert new_pid != pid
        assert steps > first
    finally:
        algo.stop()
        ray.shutdown()


@pytest.mark.parametrize("ruleset", RULESETS)
def test_killed_run_resumes_without_losing_iterations(tmp_path, ruleset):
    out = tmp_path / "run"
    cmd = [sys.executable, "experiments/run.py", "--task", "basic_triage", "--ruleset", ruleset,
           "--output", str(out),
           "--train-iters", "4", "--train-batch-size", "200", "--minibatch-size", "100",
           "--num-env-runners", "0", "--envs-per-runner", "2", "--eval-episodes", "1",
           "--compare", "ppo", "--validation-episodes", "2"]  # fmt: skip
    state = out / "checkpoint" / "train_state.json"
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if state.exists() and len(json.loads(state.read_text())["history"]) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint with 2 iterations within 240 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill the run and its Ray processes
        proc.wait()
    saved = state.read_text()
    before = json.loads(saved)["history"]
    assert 2 <= len(before) < 4
    # Without --resume the killed run's directory is refused, checkpoint untouched.
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume to continue it" in again.stderr
    assert state.read_text() == saved
    # A corrupt train state is refused clearly, before any training.
    state.write_text(saved[: len(saved) // 2])
    bad = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "train_state.json is corrupt" in bad.stderr, bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr
    state.write_text(saved)
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    after = json.loads(state.read_text())["history"]
    assert [h["iteration"] for h in after] == [1, 2, 3, 4]
    assert after[: len(before)] == before
    assert (out / "results.parquet").exists()

"""Fault tolerance: a crashed EnvRunner is restarted and training goes on; a killed
run resumes from its last checkpoint without losing finished iterations."""

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


def test_env_runner_killed_mid_training_is_restarted():
    import ray

    init_ray(None)
    register_envs()
    s = TrainSettings(task="basic_triage", num_env_runners=1, **TINY)
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


def test_killed_run_resumes_without_losing_iterations(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "experiments/run.py", "--task", "basic_triage", "--ruleset", "classic",
           "--output", str(out),
           "--train-iters", "4", "--train-batch-size", "200", "--minibatch-size", "100",
           "--num-env-runners", "0", "--envs-per-runner", "2", "--eval-episodes", "1",
           "--compare", "ppo"]  # fmt: skip
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
    before = json.loads(state.read_text())["history"]
    assert 2 <= len(before) < 4
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    after = json.loads(state.read_text())["history"]
    assert [h["iteration"] for h in after] == [1, 2, 3, 4]
    assert after[: len(before)] == before
    assert (out / "results.parquet").exists()

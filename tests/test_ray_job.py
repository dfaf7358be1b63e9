"""A real Ray head node on 127.0.0.1 runs the front door submitted through the Jobs
API (what `ray job submit --working-dir . -- python experiments/run.py ...` does)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("ray.job_submission")

ROOT = Path(__file__).resolve().parent.parent
RAY = shutil.which("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head_node(tmp_path):
    import ray

    ray.shutdown()  # no driver of this test process may hold a local Ray instance
    gcs, dash, agent, agent_grpc, runtime_env, metrics, client = (_free_port() for _ in range(7))
    # Ray 2.60 turns token authentication on by default; a private loopback head for a
    # test runs without it (the README shows how users pass a token instead).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    # A private temp dir marks every process of this head, so that teardown stops only
    # them (`ray stop` would also kill any other Ray instance on the machine).
    temp = tempfile.mkdtemp(prefix="edray-", dir="/tmp")  # short: Ray's socket paths
    cmd = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--num-cpus=2",
           "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp}",
           # Own ports for every agent: the defaults collide with any other Ray on the
           # machine, and then the job agent never comes up.
           f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
           f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
           f"--ray-client-server-port={client}"]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("Ray dashboard (Jobs API) did not come up within 60 s")
        yield url, env
    finally:
        _stop_head(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_head(temp: str) -> None:
    """Terminate the processes of the head started with ``--temp-dir=temp`` (and the
    job's workers, which run under the same session directory)."""
    import psutil

    def ours() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(temp in part for part in p.info["cmdline"] or ()):
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    procs = ours()
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=20)
    for p in alive + ours():
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


@pytest.mark.skipif(RAY is None, reason="the `ray` CLI is not on PATH")
def test_job_submission_to_a_local_head(head_node, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    url, env = head_node
    os.environ["RAY_AUTH_MODE"] = env["RAY_AUTH_MODE"]
    try:
        client = JobSubmissionClient(url)
        out = tmp_path / "job_run"
        entrypoint = (
            "python experiments/run.py --task basic_triage --ruleset classic --train-iters 1 "
            "--train-batch-size 200 --minibatch-size 100 --num-env-runners 1 "
            f"--envs-per-runner 2 --eval-episodes 2 --compare ppo fifo --output {out}"
        )
        runtime_env = {"working_dir": str(ROOT), "excludes": ["runs/", ".git/"]}
        deadline = time.time() + 90
        while True:  # the dashboard answers before its job agent is up
            try:
                job = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
                break
            except RuntimeError as e:
                if "No available agent" not in str(e) or time.time() > deadline:
                    raise
                time.sleep(1)
        deadline = time.time() + 300
        status = client.get_job_status(job)
        while status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
            assert time.time() < deadline, "job did not finish within 300 s"
            time.sleep(1)
            status = client.get_job_status(job)
        logs = client.get_job_logs(job)
        assert status == JobStatus.SUCCEEDED, logs[-3000:]
        assert "% of oracle" in logs
        for name in ["results.parquet", "summary.json", "checkpoint/train_state.json"]:
            assert (out / name).exists(), name
    finally:
        os.environ.pop("RAY_AUTH_MODE", None)


def test_kuberay_manifest_is_a_rayjob_running_the_front_door():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / "deploy" / "rayjob.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob")
    spec = doc["spec"]
    assert spec["entrypoint"].startswith("python experiments/run.py ")
    import ray

    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert ray.__version__ in head["image"]
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert "working_dir" in runtime_env and "-e ." in runtime_env["pip"]

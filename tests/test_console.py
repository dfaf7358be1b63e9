"""The web console's server side (``envs/server/console.py``, ``console_teams.py``)
through FastAPI's test client: the page is served, AI teammates play exactly the
evaluation loop's episodes, a human's turn is waited for, refusals are clear, and run
directories are served only from under the results root."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.ed_evaluation import evaluate_teams
from envs.ed.config import AGENTS
from envs.server.app import ServerConfig, create_app
from envs.server.console import RESULTS_ROOT_ENV, STATIC_DIR

URL = "http://127.0.0.1"


@pytest.fixture()
def make_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(RESULTS_ROOT_ENV, str(tmp_path / "runs"))

    def make(**config) -> TestClient:
        return TestClient(create_app(ServerConfig(**config)), base_url=URL)

    return make


@pytest.fixture()
def client(make_client) -> TestClient:
    return make_client()


def _start(c: TestClient, task: str = "basic_triage", seed: int = 3) -> str:
    r = c.post("/reset", json={"task_id": task, "seed": seed, "ruleset": "ed"})
    assert r.status_code == 200, r.text
    return r.json()["session_id"]


def _advance(c: TestClient, sid: str, players: dict | None = None, **kw):
    return c.post("/console/api/advance", json={"session_id": sid, "players": players or {}, **kw})


def _step(c: TestClient, sid: str, tool: str, **arguments):
    return c.post("/step", json={"session_id": sid, "tool": tool, "arguments": arguments})


def _final(c: TestClient, sid: str) -> dict:
    return _step(c, sid, "finalize_episode").json()["result"]


def test_page_and_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert 'src="/console/console.js"' in r.text
    for name in ("console.js", "views.js", "console.css"):
        assert client.get(f"/console/{name}").status_code == 200
        assert (STATIC_DIR / name).is_file()
    assert "cdn" not in r.text.lower() and "http" not in r.text.replace("http-equiv", "")


def test_options_list_the_task_registry_and_players(client):
    o = client.get("/console/api/options").json()
    assert {"basic_triage", "dynamic_queue", "mass_casualty", "generated"} <= set(o["tasks"])
    assert {"human", "heuristic", "random", "oracle", "trained", "llm"} <= set(o["players"])
    assert o["players"]["oracle"]["whole_team"] and o["roles"] == list(AGENTS)


@pytest.mark.parametrize(
    ("task", "seed", "spec", "players"),
    [
        ("basic_triage", 3, None, {}),
        ("dynamic_queue", 11, None, dict.fromkeys(AGENTS, "heuristic")),
        ("basic_triage", 5, "nurse=random,consultant=random,pharmacist=random",
         dict.fromkeys(AGENTS, "random")),
        ("basic_triage", 4, "consultant=random", {"consultant": "random"}),
    ],
)  # fmt: skip
def test_ai_teams_play_the_evaluation_loops_episode(client, task, seed, spec, players):
    sid = _start(client, task, seed)
    r = _advance(client, sid, players, until="end").json()
    assert r["done"] and not r["human_turn"]
    expected = evaluate_teams(task, {"t": spec}, [seed])[0]
    final = _final(client, sid)
    assert final["score"] == expected["score"]
    assert final["team_return"] == pytest.approx(expected["episode_return"])
    assert sum(s["step_reward"] for s in r["substeps"]) == pytest.approx(final["team_return"])


def test_the_oracle_team_reaches_the_bound_and_plays_only_whole(client):
    sid = _start(client, "basic_triage", 3)
    oracle = dict.fromkeys(AGENTS, "oracle")
    assert _advance(client, sid, oracle, until="end").status_code == 200
    bound = evaluate_teams("basic_triage", {"h": None}, [3])[0]["oracle_score"]
    assert _final(client, sid)["score"] == bound
    sid = _start(client)
    r = _advance(client, sid, {"consultant": "oracle"})
    assert r.status_code == 400 and "whole team" in r.json()["error"]


def test_step_and_time_step(client):
    sid = _start(client)
    one = _advance(client, sid, until="substep").json()
    assert len(one["substeps"]) == 1 and one["substeps"][0]["step"] == 0
    step = _advance(client, sid, until="step").json()
    assert step["substeps"][-1]["time_advanced"]
    assert not any(s["time_advanced"] for s in step["substeps"][:-1])
    assert step["state"]["step"] == 1


def test_a_human_nurse_is_waited_for(client):
    sid = _start(client, "basic_triage", 7)
    players = {"triage_nurse": "human"}
    r = _advance(client, sid, players).json()
    assert r["substeps"] == [] and r["human_turn"]  # her turn first: nothing played
    view = r["state"]["triage_nurse"]["patients"]
    pid = next(p["patient_id"] for p in view if p["can_triage"])
    # The AI never ENDs a person's turn, whatever 'until' says.
    assert _advance(client, sid, players, until="end").json()["substeps"] == []
    ok = _step(client, sid, "triage_patient", patient_id=pid, category=2)
    assert ok.status_code == 200
    again = _step(client, sid, "triage_patient", patient_id=pid, category=3)
    assert again.status_code == 409 and again.json()["code"] == "already_acted"
    r = _advance(client, sid, players).json()
    assert r["substeps"][0]["applied"]["triage_nurse"] == f"triage {pid} -> 2"
    # END by choice: one sub-step with the nurse passing, then on until she can act.
    r = _advance(client, sid, players, pass_turn=True).json()
    assert r["substeps"][0]["applied"]["triage_nurse"] == "END"
    while not r["done"]:
        r = _advance(client, sid, players, pass_turn=True).json()
    late = _step(client, sid, "triage_patient", patient_id=pid, category=1)
    assert late.status_code == 409 and late.json()["code"] == "episode_finished"


def test_debrief_and_comparison_only_after_the_end(client):
    sid = _start(client, "basic_triage", 3)
    for path in ("debrief", "compare"):
        r = (
            client.get(f"/console/api/debrief?session_id={sid}")
            if path == "debrief"
            else client.post("/console/api/compare", json={"session_id": sid})
        )
        assert r.status_code == 409 and r.json()["code"] == "episode_running"
    _advance(client, sid, until="end")
    patients = client.get(f"/console/api/debrief?session_id={sid}").json()["patients"]
    from envs.ed.scenario import build_ed_scenario
    from envs.tasks import get_task

    truth = {
        p.patient_id: p.severity for p in build_ed_scenario(get_task("basic_triage"), 3).patients
    }
    assert {p["patient_id"]: p["true_category"] for p in patients} == truth
    labels = {-1: "over", 0: "exact", 1: "under"}  # nurse's number above the truth: under
    for p in patients:
        nurse = p["nurse_category"]
        want = (
            None
            if nurse is None
            else labels[(nurse > p["true_category"]) - (nurse < p["true_category"])]
        )
        assert p["triage"] == want
    assert any(p["nurse_category"] for p in patients)
    cmp = client.post("/console/api/compare", json={"session_id": sid}).json()
    row = evaluate_teams("basic_triage", {"h": None}, [3])[0]
    assert cmp["teams"][0]["score"] == row["score"]
    assert cmp["oracle"]["score"] == row["oracle_score"]


def test_refusals_are_clear(make_client):
    c = make_client(idle_timeout_s=0.2)
    r = _advance(c, "nope")
    assert r.status_code == 404 and r.json()["code"] == "unknown_session"
    sid = _start(c)
    assert _advance(c, sid, {"nurse": "heuristic"}).status_code == 400  # role names only
    r = _advance(c, sid, {"triage_nurse": "genius"})
    assert r.status_code == 400 and "unknown player" in r.json()["error"]
    assert _advance(c, sid, until="forever").status_code == 400
    r = _advance(c, sid, dict.fromkeys(AGENTS, "trained"))
    assert r.status_code == 400 and "run directory" in r.json()["error"]
    time.sleep(0.3)
    r = _advance(c, sid)
    assert r.status_code == 404 and r.json()["code"] == "session_expired"
    classic = c.post("/reset", json={"task_id": "basic_triage", "seed": 1}).json()["session_id"]
    r = _advance(c, classic)
    assert r.status_code == 409 and r.json()["code"] == "wrong_ruleset"


def _run_dir(root: Path, name: str, summary: str = '{"summary": [], "paired": []}') -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(summary)
    (d / "config.json").write_text(json.dumps({"task": "basic_triage", "ruleset": "ed"}))
    (d / "comparison.png").write_bytes(b"\x89PNG fake")
    (d / "results.parquet").write_bytes(b"not served")
    return d


def test_a_trained_team_plays_only_the_version_it_was_trained_on(tmp_path, client):
    d = _run_dir(tmp_path / "runs", "v1-run")
    (d / "config.json").write_text(json.dumps({"task": "basic_triage", "ruleset": "ed",
                                               "ed_version": "v1"}))  # fmt: skip
    (d / "checkpoint").mkdir()
    assert client.get("/console/api/runs").json()["runs"][0]["ed_version"] == "v1"
    sid = _start(client)  # basic_triage plays ed v0 unless asked
    r = _advance(client, sid, {"consultant": "trained"}, run="v1-run")
    assert r.status_code == 409 and r.json()["code"] == "version_mismatch"
    assert "version='v1'" in r.json()["error"]
    _advance(client, sid, until="end")
    r = client.post("/console/api/compare", json={"session_id": sid, "run": "v1-run"})
    assert r.status_code == 409 and r.json()["code"] == "version_mismatch"
    # Started in the run's version, the check passes (then the missing modules are the error).
    _step(client, sid, "start_task", task_id="basic_triage", seed=3, ruleset="ed", version="v1")
    r = _advance(client, sid, {"consultant": "trained"}, run="v1-run")
    assert r.status_code == 400 and "trained team" in r.json()["error"]


def test_runs_are_served_only_from_the_results_root(tmp_path, client):
    root = tmp_path / "runs"
    _run_dir(root, "a-run", '{"summary": [{"policy": "x", "score_ci95": NaN}], "paired": []}')
    outside = _run_dir(tmp_path / "elsewhere", "secret")
    (root / "link").symlink_to(outside)
    (root / "no-summary").mkdir()
    listed = client.get("/console/api/runs").json()["runs"]
    assert [r["name"] for r in listed] == ["a-run"]
    got = client.get("/console/api/runs/a-run").json()
    assert got["summary"]["summary"][0]["score_ci95"] is None  # NaN → null
    assert got["files"] == ["comparison.png"] and got["config"]["task"] == "basic_triage"
    assert client.get("/console/api/runs/a-run/files/comparison.png").content == b"\x89PNG fake"
    for name in ("link", "no-summary", "nothing"):
        assert client.get(f"/console/api/runs/{name}").status_code == 404
    for name in ("..", ".hidden", "%2E%2E", "a%20b"):
        r = client.get(f"/console/api/runs/{name}")
        assert r.status_code in (400, 404), name
        assert "secret" not in r.text
    for file in ("results.parquet", "summary.json", "..%2Fconfig.json"):
        assert client.get(f"/console/api/runs/a-run/files/{file}").status_code == 404
    r = _advance(client, _start(client), dict.fromkeys(AGENTS, "trained"), run="../elsewhere")
    assert r.status_code == 400 and "not a path" in r.json()["error"]


@pytest.mark.slow
def test_a_trained_team_plays_its_run_directorys_episodes(tmp_path, make_client):
    """Train one PPO iteration with run.py, then the console's ``trained`` players play
    a held-out seed exactly as run.py's evaluation did (~2 min)."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    run = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, "experiments/run.py", "--task", "basic_triage",
           "--train-iters", "1", "--eval-episodes", "1", "--compare", "ppo", "heuristic",
           "--bc-episodes", "5", "--validation-episodes", "2", "--output", str(run)]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, timeout=900)
    rows = [r for r in pq.read_table(run / "results.parquet").to_pylist() if r["policy"] == "ppo"]
    seed = rows[0]["seed"]
    c = make_client()
    assert c.get("/console/api/runs").json()["runs"][0]["trained"]
    sid = _start(c, "basic_triage", seed)
    r = _step(c, sid, "start_task", task_id="basic_triage", seed=seed, ruleset="ed", version="v1")
    assert r.status_code == 200, r.text  # run.py trains ed v1 (its default)
    r = _advance(c, sid, dict.fromkeys(AGENTS, "trained"), until="end", run="tiny")
    assert r.status_code == 200, r.text
    assert _final(c, sid)["score"] == rows[0]["score"]
    cmp = c.post("/console/api/compare", json={"session_id": sid, "run": "tiny"}).json()
    assert [t["team"] for t in cmp["teams"]] == ["heuristic team", "trained team"]
    assert cmp["teams"][1]["score"] == rows[0]["score"]


def test_teams_share_loaded_models_not_policy_objects():
    """Two sessions with the same trained run or LLM must not share policy objects: each
    binds its own env context (a shared one would read another session's patients)."""
    from envs.server.console_teams import TeammateFactory

    built: list[object] = []

    def backend() -> object:
        built.append(object())
        return built[-1]

    f = TeammateFactory(llm_backend=backend)
    one, two = f.llm(), f.llm()
    assert len(built) == 1 and set(one) == set(AGENTS)
    assert all(one[a] is not two[a] for a in AGENTS)
    assert all(one[a]._backend is built[0] for a in AGENTS)

    def broken() -> object:
        raise ImportError("No module named 'transformers'")

    from envs.tool_api import ToolError

    with pytest.raises(ToolError, match="LLM player is not available here"):
        TeammateFactory(llm_backend=broken).llm()

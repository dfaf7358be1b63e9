"""The multi-agent ``ed`` tools: ``envs.ed_tool_api.EdToolSession`` in-process, and the
server (``--rulesets classic,ed``) as a real process on 127.0.0.1 through raw HTTP, the
client (HTTP and WebSocket) and MCP. Every episode is the heuristic team's episode on
``EdTriageParallelEnv`` replayed through tool calls, with bad calls injected: every
per-step team reward, the final score, grader and KPIs must be equal exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import httpx
import numpy as np
import pytest
from server_fixtures import start_servers

from agents.ed_evaluation import team_context
from agents.roles import make_team
from envs.ed.config import AGENTS, DRUGS, N_CATEGORIES, N_DRUGS
from envs.ed.engine import action_sizes
from envs.ed_tool_api import EdToolSession, MultiRulesetSession, default_version
from envs.ed_triage_v1 import ED_ENVS
from envs.server.client import Client, ServerError
from envs.server.tools import ED_REGISTRY, ED_TOOLS
from envs.tool_api import ToolError, ToolSession

ED_ARGS = ("--rulesets", "classic,ed")
Call = Callable[..., Any]


# -- the reference: the heuristic team on the PettingZoo env --------------------------------


@lru_cache(maxsize=16)
def reference(task: str, seed: int | None, version: str | None = None):
    """(patient ids by slot, n_slots, [(actions, masks, team reward, done)], final info)
    of the heuristic team on the PettingZoo env of ``version`` (None: the tools' default)."""
    env = ED_ENVS[version or default_version(task)](task=task)
    team = make_team(None, team_context(env), seed)
    for p in team.values():
        p.reset(seed)
    obs, _ = env.reset(seed=seed) if seed is not None else env.reset()
    steps = []
    infos: dict = {}
    while env.agents:
        actions = {a: int(team[a].act(obs[a])) for a in env.agents}
        masks = {a: obs[a]["action_mask"].copy() for a in AGENTS}
        obs, rewards, terms, _, infos = env.step(actions)
        assert len(set(rewards.values())) == 1  # team mode
        steps.append((actions, masks, rewards["consultant"], terms["consultant"]))
    ids = tuple(p.patient_id for p in env.state.scenario.patients)
    return ids, env.n_slots, steps, infos["consultant"]


def tool_calls(ids, n_slots: int, actions: dict[str, int]) -> list[tuple[str, dict]]:
    """The env's discrete actions as tool calls (END: no call)."""
    end = {r.agent: size - 1 for r, size in action_sizes(n_slots).items()}
    out = []
    if (a := actions["triage_nurse"]) != end["triage_nurse"]:
        slot, c = divmod(a, N_CATEGORIES)
        out.append(("triage_patient", {"patient_id": ids[slot], "category": c + 1}))
    if (a := actions["pharmacist"]) != end["pharmacist"]:
        slot, d = divmod(a, N_DRUGS)
        out.append(("dispense_drug", {"patient_id": ids[slot], "drug": DRUGS[d].value}))
    if (a := actions["consultant"]) != end["consultant"]:
        out.append(("serve_patient", {"patient_id": ids[a]}))
    return out


def refused(call: Call, code: str, text: str, tool: str, **args: Any) -> None:
    with pytest.raises(ToolError) as e:
        call(tool, **args)
    assert e.value.code == code, (tool, args, e.value.code, e.value.message)
    assert text in e.value.message, (tool, e.value.message)
    if isinstance(e.value, ServerError):
        want = {"bad_argument": (400, 422)}.get(code, (409,))
        assert e.value.status in want and e.value.payload["code"] == code


def bad_calls(view: dict, ids, i: int) -> list[tuple[str, str, str, dict]]:
    """Wrong calls for sub-step ``i`` of an episode: (code, text, tool, arguments)."""
    waiting = [p["patient_id"] for p in view["consultant"]["patients"]]
    blocked = [p["patient_id"] for p in view["consultant"]["patients"] if not p["can_serve"]]
    absent = [pid for pid in ids if pid not in waiting]
    someone = waiting[0] if waiting else ids[0]
    cases = [
        ("bad_argument", "unknown patient 'P999'", "triage_patient", {"patient_id": "P999"}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": 0}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": 6}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": "2"}),
        ("bad_argument", "unknown drug", "dispense_drug", {"patient_id": someone, "drug": "xyz"}),
        ("wrong_ruleset", "end_step()", "wait", {}),
        ("bad_argument", "role", "get_queue_state", {"role": "janitor"}),
        ("bad_argument", "unknown patient", "serve_patient", {"patient_id": "p001"}),
    ]
    if blocked or absent:
        cases.append(("illegal_action", "serve_patient:", "serve_patient",
                      {"patient_id": (blocked or absent)[i % len(blocked or absent)]}))  # fmt: skip
    if absent:
        cases.append(("illegal_action", absent[0], "triage_patient",
                      {"patient_id": absent[0], "category": 3}))  # fmt: skip
    for c in cases:
        if c[2] == "triage_patient":
            c[3].setdefault("category", 2)
    return [cases[i % len(cases)], cases[(i * 5 + 3) % len(cases)]]


def play(
    call: Call, task: str, seed: int | None, inject: bool = True, version: str | None = None
) -> dict:
    """Replay the reference episode through ``call(tool, **args)``; returns the final
    grade. Asserts every sub-step's reward, and (with ``inject``) that wrong calls are
    refused without effect. ``version`` None: the tools' default (v1 for the suite)."""
    ids, n_slots, steps, final = reference(task, seed, version)
    v1 = (version or default_version(task)) == "v1"
    start_args = {} if version is None else {"version": version}
    start = call("start_task", task_id=task, seed=seed, ruleset="ed", **start_args)
    assert start["ruleset"] == "ed" and start["state"]["step"] == 0 and not start["state"]["done"]
    assert start["version"] == (version or default_version(task))
    departures = {"left without being seen": 0, "died waiting": 0}
    for i, (actions, masks, reward, done) in enumerate(steps):
        view = call("get_queue_state")
        assert not view["done"]
        check_view(view, ids, masks, v1)
        if inject:
            for code, text, tool, args in bad_calls(view, ids, i):
                refused(call, code, text, tool, **args)
            assert call("get_queue_state") == view  # nothing changed
        for tool, args in tool_calls(ids, n_slots, actions):
            out = call(tool, **args)
            assert out["role"] in AGENTS and args["patient_id"] in out["action"]
            if inject and tool == "triage_patient":
                refused(call, "already_acted", "already acted", tool, **args)
        out = call("end_step")
        assert out["step_reward"] == reward and out["done"] == done, (i, out["step_reward"])
        assert all(r == reward for r in out["rewards"].values())
        terms = out["reward_terms"]["consultant"]
        want = {"serve", "waiting_immediate", "idle_doctors", "illegal_action"}
        assert set(terms) == (want | {"lwbs", "death"} if v1 else want)
        assert terms["illegal_action"] == 0.0  # the API never lets an illegal action through
        for what in departures:
            departures[what] += sum(e.endswith(what) for e in out["events"])
    if inject:
        refused(call, "episode_finished", "finalize_episode", "triage_patient",
                patient_id=ids[0], category=2)  # fmt: skip
        refused(call, "episode_finished", "finalize_episode", "end_step")
    graded = call("finalize_episode")
    assert graded["score"] == final["score"] and 0.0 < graded["score"] < 1.0
    assert graded["kpis"] == final["kpis"] and graded["grader"] == final["grader"]
    assert graded["oracle_value"] == final["oracle_value"]
    assert graded["team_return"] == final["episode_return"]
    assert graded["parallel_steps"] == len(steps) and graded["episode_complete"]
    if v1:  # the departures the tools announced are the env's KPIs
        assert departures["left without being seen"] == graded["kpis"]["lwbs"]
        assert departures["died waiting"] == graded["kpis"]["deaths"]
        last = call("get_queue_state")
        assert len(last["left_without_being_seen"]) == graded["kpis"]["lwbs"]
        assert len(last["died"]) == graded["kpis"]["deaths"]
    else:
        assert "lwbs" not in graded["kpis"] and sum(departures.values()) == 0
    return graded


def check_view(view: dict, ids, masks: dict[str, np.ndarray], v1: bool = False) -> None:
    """Each role's ``can_*`` flags are exactly its action mask; no true severity; under
    v1 the consultant sees no self-report before triage."""
    nurse = {p["patient_id"] for p in view["triage_nurse"]["patients"] if p["can_triage"]}
    m = masks["triage_nurse"][:-1].reshape(-1, N_CATEGORIES)
    assert nurse == {ids[s] for s in np.flatnonzero(m[:, 0]) if s < len(ids)}
    doc = {p["patient_id"] for p in view["consultant"]["patients"] if p["can_serve"]}
    assert doc == {ids[s] for s in np.flatnonzero(masks["consultant"][:-1]) if s < len(ids)}
    pairs = {
        (p["patient_id"], d) for p in view["pharmacist"]["patients"] for d in p["can_dispense"]
    }
    m = masks["pharmacist"][:-1].reshape(-1, N_DRUGS)
    assert pairs == {(ids[s], DRUGS[d].value) for s, d in zip(*np.nonzero(m), strict=True)}
    assert "severity" not in json.dumps(view)
    for p in view["consultant"]["patients"]:
        assert (p["category"] is None) == (v1 and not p["triaged"]), p


# -- in-process --------------------------------------------------------------------------


def session_call(s: Any) -> Call:
    return lambda tool, **args: getattr(s, tool)(**args)


@pytest.mark.parametrize(
    "task,seed",
    [("basic_triage", 42), ("dynamic_queue", None), ("mass_casualty", 42), ("generated", 3)],
)
def test_session_episode_equals_env(task, seed):
    play(session_call(MultiRulesetSession()), task, seed)


def test_session_plain_episode_and_views():
    s = EdToolSession()
    play(session_call(s), "mass_casualty", 7, inject=False)
    state = s.get_current_state()
    assert state["ruleset"] == "ed" and state["episode_done"] and state["active_task"]
    assert state["finalized_scores"] == {"mass_casualty": reference("mass_casualty", 7)[3]["score"]}
    view = s.get_queue_state(role="nurse")
    assert "triage_nurse" in view and "consultant" not in view and "pharmacist" not in view


def test_session_refusals_change_nothing():
    s = EdToolSession()
    call = session_call(s)
    refused(call, "no_active_task", "start_task", "triage_patient", patient_id="P001", category=2)
    refused(call, "no_active_task", "start_task", "end_step")
    refused(call, "no_active_task", "start_task", "get_queue_state")
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    refused(call, "bad_argument", "'ed' only", "start_task", task_id="basic_triage",
            ruleset="classic")  # fmt: skip
    s.start_task("basic_triage", seed=42)
    before = s.get_queue_state()
    refused(call, "bad_argument", "seed", "start_task", task_id="basic_triage", seed=-1)
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    waiting = {q["patient_id"] for q in before["consultant"]["patients"]}
    pending = [p.patient_id for p in s.env.state.scenario.patients if p.patient_id not in waiting]
    assert pending
    refused(call, "illegal_action", "has not arrived", "serve_patient", patient_id=pending[0])
    refused(call, "illegal_action", "not triaged", "dispense_drug", patient_id="P001",
            drug="aspirin")  # fmt: skip
    assert s.get_queue_state() == before
    # A dose for a patient the nurse triages in the same sub-step is legal (the env's rule).
    s.triage_patient("P001", 2)
    assert "aspirin" in s.get_queue_state("pharmacist")["pharmacist"]["patients"][0]["can_dispense"]
    s.dispense_drug("P001", "Aspirin")  # loose spellings, as the Drug enum parses them
    refused(call, "already_acted", "already acted", "dispense_drug", patient_id="P002",
            drug="aspirin")  # fmt: skip
    out = s.end_step()
    assert out["applied"]["consultant"] == "END" and not out["time_advanced"]
    assert out["events"][:2] == ["triage P001 -> 2", "aspirin -> P001: given"]
    refused(
        call, "illegal_action", "turn is over", "dispense_drug", patient_id="P001", drug="aspirin"
    )  # fmt: skip (capacity 1 per time step, spent)
    refused(call, "illegal_action", "already triaged", "triage_patient", patient_id="P001",
            category=1)  # fmt: skip


def test_router_keeps_classic_bit_for_bit():
    router, ref = MultiRulesetSession(), ToolSession()
    assert router.ruleset is None
    call = session_call(router)
    refused(call, "no_active_task", "start_task", "get_queue_state")
    refused(call, "bad_argument", "available: classic, ed", "start_task", task_id="basic_triage",
            ruleset="nope")  # fmt: skip
    for tool, args in [
        ("start_task", {"task_id": "dynamic_queue", "seed": 3}),
        ("get_queue_state", {}),
        ("serve_patient", {"patient_id": "P001"}),
        ("wait", {}),
        ("serve_patient", {"patient_id": "P999"}),
        ("finalize_episode", {}),
    ]:
        assert call(tool, **args) == getattr(ref, tool)(**args), tool
    refused(call, "bad_argument", "ed ruleset only", "get_queue_state", role="consultant")
    router.start_task("basic_triage", seed=1, ruleset="ed")
    assert router.ruleset == "ed" and router.active is router.ed
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    assert router.ruleset == "ed"  # a refused start changes nothing
    router.start_task("basic_triage")
    fresh = ToolSession().start_task("basic_triage")["initial_queue"]
    assert router.ruleset == "classic" and router.get_queue_state()["queue"] == fresh


# -- the server, a real process ----------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    (s,) = start_servers(ED_ARGS)
    yield s
    s.stop()


def http_call(c: httpx.Client, sid: str) -> Call:
    """A tool call over raw ``POST /step``; a refusal must be 4xx JSON and is raised as
    the client's ServerError."""

    def call(tool: str, **args: Any) -> Any:
        r = c.post("/step", json={"session_id": sid, "tool": tool, "arguments": args})
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        if r.status_code != 200:
            assert 400 <= r.status_code < 500 and set(body) >= {"error", "code"}, body
            raise ServerError(r.status_code, body["code"], body["error"], body)
        assert body["tool"] == tool and body["session_id"] == sid
        if tool == "end_step":
            assert body["reward"] == body["result"]["step_reward"]
            assert body["done"] == body["result"]["done"]
        return body["result"]

    return call


@pytest.mark.parametrize("task,seed", [("mass_casualty", 42), ("basic_triage", 7)])
def test_http_episode_equals_env(server, task, seed):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        r = c.post("/reset", json={"task_id": task, "seed": seed, "ruleset": "ed"})
        assert r.status_code == 200 and r.json()["observation"]["ruleset"] == "ed"
        sid = r.json()["session_id"]
        play(http_call(c, sid), task, seed)
        state = c.get("/state", params={"session_id": sid}).json()["state"]
        assert state["ruleset"] == "ed" and task in state["finalized_scores"]
        c.delete(f"/sessions/{sid}")
    assert server.alive()


@pytest.mark.parametrize(
    "transport,task,seed", [("http", "mass_casualty", 99), ("ws", "basic_triage", None)]
)
def test_client_episode_equals_env(server, transport, task, seed):
    with Client(server.url, transport=transport).sync() as env:
        env.reset()
        graded = play(lambda tool, **a: json.loads(env.call_tool(tool, **a)), task, seed)
        assert env.call_tool_json("get_current_state")["finalized_scores"] == {
            task: graded["score"]
        }


def test_classic_and_ed_share_a_server(server):
    with Client(server.url).sync() as env:
        with pytest.raises(ServerError) as e:  # before any task: which ruleset is unknown
            env.call_tool("triage_patient", patient_id="P001", category=2)
        assert e.value.status == 409 and e.value.code == "wrong_ruleset"
        assert "start_task" in e.value.message
        env.call_tool("start_task", task_id="basic_triage", seed=5)  # classic by default
        for tool, args in [
            ("triage_patient", {"patient_id": "P001", "category": 2}),
            ("dispense_drug", {"patient_id": "P001", "drug": "aspirin"}),
            ("end_step", {}),
        ]:
            with pytest.raises(ServerError) as e:
                env.call_tool(tool, **args)
            assert (e.value.status, e.value.code) == (409, "wrong_ruleset")
            assert "needs ruleset ed; active ruleset: classic" in e.value.message
        ref = ToolSession()
        ref.start_task("basic_triage", seed=5)
        assert env.call_tool_json("serve_patient", patient_id="P001") == ref.serve_patient("P001")
        # then the brief's example, in an ed episode on the same session
        out = env.reset(task_id="basic_triage", seed=5, ruleset="ed")["observation"]
        pid = out["state"]["triage_nurse"]["patients"][0]["patient_id"]
        assert json.loads(env.call_tool("triage_patient", patient_id=pid, category=2))["queued"]
        reply = env.step("end_step")
        assert reply["reward"] == reply["result"]["step_reward"] and reply["done"] is False


def test_tools_and_metadata(server):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        tools = {t["name"]: t for t in c.get("/tools").json()["tools"]}
        assert list(tools) == list(ED_REGISTRY.names())
        for spec in ED_TOOLS:
            assert tools[spec.name]["_meta"]["edmarl/rulesets"] == ["ed"]
        assert tools["triage_patient"]["inputSchema"]["required"] == ["patient_id", "category"]
        assert tools["dispense_drug"]["inputSchema"]["properties"]["drug"]["type"] == "string"
        assert tools["end_step"]["_meta"]["edmarl/advances_time"] is True
        assert "role" in tools["get_queue_state"]["inputSchema"]["properties"]
        meta = c.get("/metadata").json()
        assert meta["rulesets"] == ["classic", "ed"] and "end_step" in meta["tools"]


def test_mcp_ed_tools(server):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:

        def rpc(method: str, params: dict | None = None, sid: str | None = None):
            headers = {"Mcp-Session-Id": sid} if sid else {}
            msg = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
            return c.post("/mcp", json=msg, headers=headers)

        r = rpc("initialize", {"protocolVersion": "2025-06-18"})
        sid = r.headers["mcp-session-id"]
        assert "end_step()" in r.json()["result"]["instructions"]

        def tool(name: str, **args: Any) -> dict:
            return rpc("tools/call", {"name": name, "arguments": args}, sid).json()["result"]

        start = tool("start_task", task_id="mass_casualty", seed=1, ruleset="ed")
        assert not start["isError"] and start["structuredContent"]["ruleset"] == "ed"
        pid = start["structuredContent"]["state"]["triage_nurse"]["patients"][0]["patient_id"]
        bad = tool("triage_patient", patient_id=pid, category=9)
        assert bad["isError"] and json.loads(bad["data"])["code"] == "bad_argument"
        assert not tool("triage_patient", patient_id=pid, category=1)["isError"]
        done = tool("end_step")["structuredContent"]
        assert done["applied"]["triage_nurse"] == f"triage {pid} -> 1"
        rpc_err = rpc("tools/call", {"name": "triage_patient", "arguments": {}}, sid).json()
        assert rpc_err["error"]["code"] == -32602  # missing arguments: JSON-RPC error
        c.request("DELETE", "/mcp", headers={"Mcp-Session-Id": sid})


def test_classic_only_server_is_unchanged():
    from fastapi.testclient import TestClient

    from envs.server.app import ServerConfig, create_app, parse_args

    assert parse_args([]).rulesets == ("classic", "ed")
    assert parse_args(["--rulesets", "classic"]).rulesets == ("classic",)
    assert parse_args(["--rulesets", "classic,ed"]).rulesets == ("classic", "ed")
    with pytest.raises(ValueError, match="rulesets"):
        ServerConfig(rulesets=("ed",))
    classic_only = ServerConfig(allowed_hosts=("testserver",), rulesets=("classic",))
    with TestClient(create_app(classic_only)) as c:
        assert "triage_patient" not in c.get("/metadata").json()["tools"]
        sid = c.post("/reset").json()["session_id"]
        r = c.post("/step", json={"session_id": sid, "tool": "end_step"})
        assert r.status_code == 404 and r.json()["code"] == "unknown_tool"


# -- v1: the suite scenarios and the version argument --------------------------------------

V1_EPISODES = [("night_shift", 3, None), ("misreporters", 5, None), ("mass_casualty", 42, "v1")]


@pytest.mark.parametrize("task,seed,version", V1_EPISODES)
def test_session_v1_episode_equals_env(task, seed, version):
    graded = play(session_call(MultiRulesetSession()), task, seed, version=version)
    assert graded["version"] == "v1" and {"lwbs", "deaths"} <= set(graded["kpis"])


def test_v1_normalised_is_evaluate_teams():
    from agents.ed_evaluation import evaluate_teams

    s = EdToolSession()
    graded = play(session_call(s), "night_shift", 3, inject=False)
    (row,) = evaluate_teams("night_shift", {"heuristic": None}, [3], version="v1")
    assert graded["normalised"] == row["normalised"] and graded["score"] == row["score"]
    assert graded["normalised"] < 1.0  # below the bound on this seed (and here below random)
    assert s.finalize_episode()["normalised"] == graded["normalised"]  # cached, same value
    s.start_task("night_shift")  # unseeded: no random-team anchor on the same episode
    assert s.finalize_episode()["normalised"] is None


def test_v1_consultant_never_sees_a_self_report():
    s = EdToolSession()
    s.start_task("misreporters", seed=5)
    for _ in range(6):  # a few steps with a waiting room that grows faster than triage
        view = s.get_queue_state("consultant")["consultant"]
        nurse = s.get_queue_state("nurse")["triage_nurse"]["patients"]
        untriaged = [p for p in view["patients"] if not p["triaged"]]
        assert all(p["category"] is None for p in untriaged)
        assert all("self_reported" not in k for p in view["patients"] for k in p)
        assert all(not p["can_serve"] for p in untriaged)  # v1: no doctor before triage
        if untriaged:
            pid = untriaged[0]["patient_id"]
            with pytest.raises(ToolError, match="not triaged yet"):
                s.serve_patient(pid)
        todo = [p for p in nurse if p["can_triage"]]
        if todo:
            s.triage_patient(todo[0]["patient_id"], 2)
            s.end_step()
            mine = {
                p["patient_id"]: p
                for p in s.get_queue_state("consultant")["consultant"]["patients"]
            }
            assert mine[todo[0]["patient_id"]]["category"] == 2  # the nurse's, not the truth
        else:
            s.end_step()
    # v0 keeps showing the self-report (today's behaviour)
    s.start_task("basic_triage", seed=1)
    assert s.version == "v0"
    assert all(p["category"] for p in s.get_queue_state()["consultant"]["patients"])


def test_v1_doctors_busy_with_treatments():
    s = EdToolSession()
    s.start_task("night_shift", seed=3)  # one doctor; a serve holds it for 2 steps
    busy_seen = False
    while not s.get_queue_state()["done"]:
        view = s.get_queue_state()
        doc = view["consultant"]
        assert doc["doctors_left"] + doc["doctors_busy"] <= doc["doctors_total"]
        busy_seen |= doc["doctors_busy"] > 0
        nurse = [p for p in view["triage_nurse"]["patients"] if p["can_triage"]]
        if nurse:
            s.triage_patient(nurse[0]["patient_id"], nurse[0]["self_reported_urgency"])
        serve = [p for p in doc["patients"] if p["can_serve"]]
        if serve:
            s.serve_patient(serve[0]["patient_id"])
        s.end_step()
    assert busy_seen


def test_version_argument_refusals():
    s = MultiRulesetSession()
    call = session_call(s)
    for version, text in [("v9", "unknown version 'v9'; choose one of v0, v1, v2"),
                          (1, "unknown version 1"), (["v1"], "unknown version")]:  # fmt: skip
        refused(call, "bad_argument", text, "start_task", task_id="basic_triage", ruleset="ed",
                version=version)  # fmt: skip
    refused(call, "bad_argument", "exists in version v1 only", "start_task",
            task_id="night_shift", ruleset="ed", version="v0")  # fmt: skip
    refused(call, "bad_argument", "ed ruleset only", "start_task", task_id="basic_triage",
            version="v1")  # fmt: skip
    refused(call, "bad_argument", "unknown task", "start_task", task_id="night_shift")  # classic
    assert s.ruleset is None  # nothing started
    assert s.start_task("generated", seed=2, ruleset="ed", version="v1")["version"] == "v1"
    assert s.ed.config.is_v1


def test_list_tasks_has_the_suite():
    from envs.ed.suite import SCENARIOS

    tasks = {t["task_id"]: t for t in MultiRulesetSession().list_tasks()}
    assert list(tasks) == ["basic_triage", "dynamic_queue", "mass_casualty", *SCENARIOS]
    for name, sc in SCENARIOS.items():
        t = tasks[name]
        assert t["versions"] == ["v1"] and t["rulesets"] == ["ed"]
        assert t["description"] == t["challenge"] == sc.challenge
        assert t["num_doctors"] == sc.params.doctors and t["max_steps"] == sc.params.horizon
    assert tasks["mass_casualty"]["versions"] == ["v0", "v1", "v2"]
    assert "classic" in tasks["mass_casualty"]["rulesets"]


@pytest.mark.parametrize("task,seed", [("night_shift", 3), ("misreporters", 5)])
def test_http_v1_episode_equals_env(server, task, seed):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        sid = c.post("/reset", json={}).json()["session_id"]
        call = http_call(c, sid)
        play(call, task, seed)
        refused(call, "bad_argument", "unknown version", "start_task", task_id=task,
                ruleset="ed", version="v9")  # fmt: skip
        r = c.post("/step", json={"session_id": sid, "tool": "start_task",
                                  "arguments": {"task_id": task, "version": 2}})  # fmt: skip
        assert r.status_code in (400, 422) and r.json()["code"] == "bad_argument"
        tools = {t["name"]: t for t in c.get("/tools").json()["tools"]}
        schema = tools["start_task"]["inputSchema"]["properties"]["version"]
        assert schema["type"] == ["string", "null"] and schema["default"] is None
        c.delete(f"/sessions/{sid}")

"""The multi-agent ``ed`` tools over the server (``--rulesets classic,ed``) as a real
process on 127.0.0.1: raw HTTP, the client (HTTP and WebSocket) and MCP replay the
heuristic team's episodes exactly (helpers: tests/ed_tools_helpers.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ed_tools_helpers import (
    ED_ARGS,
    Call,
    play,
    refused,
)
from server_fixtures import start_servers

from envs.server.client import Client, ServerError
from envs.server.tools import ED_REGISTRY, ED_TOOLS
from envs.tool_api import ToolSession

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

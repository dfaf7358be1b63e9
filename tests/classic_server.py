"""Helpers of the classic server's tests (tests/test_server.py,
tests/test_server_transports.py; their server fixtures are in tests/conftest.py): a
deterministic policy that also makes bad moves, the in-process reference, one HTTP
episode."""

from __future__ import annotations

import json
from typing import Any

import httpx

from envs.tool_api import ToolSession

TOOLS = [
    "list_tasks",
    "start_task",
    "get_queue_state",
    "serve_patient",
    "wait",
    "finalize_episode",
    "get_current_state",
]
CASES = [("basic_triage", None), ("dynamic_queue", 7), ("mass_casualty", 42), ("task_3_hard", 5)]


def choose(state: dict, i: int) -> tuple[str, dict]:
    """A deterministic policy that also makes unknown, blocked and idle moves."""
    queue = state["queue"]
    servable = [p for p in queue if p["can_serve_now"]]
    blocked = [p for p in queue if not p["can_serve_now"]]
    if i % 7 == 3:
        return "serve_patient", {"patient_id": "P999"}
    if i % 5 == 2 and blocked:
        return "serve_patient", {"patient_id": blocked[0]["patient_id"]}
    if i % 6 == 5 or not servable:
        return "wait", {}
    return "serve_patient", {"patient_id": servable[i % len(servable)]["patient_id"]}


def reference(task: str, seed: int | None, actions: list[tuple[str, dict]]) -> list[Any]:
    s = ToolSession()
    out = [s.start_task(task, seed=seed)]
    for tool, args in actions:
        out.append(getattr(s, tool)(**args))
    return out


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def serve(http: httpx.Client, sid: str, patient_id: str) -> dict:
    """``serve_patient`` over HTTP; the reply must be 200."""
    body = {"session_id": sid, "tool": "serve_patient", "arguments": {"patient_id": patient_id}}
    return ok(http.post("/step", json=body))


def play_http(http: httpx.Client, task: str, seed: int | None, openenv_shape: bool = False):
    """Play one episode over HTTP; returns (session_id, actions, results)."""
    body: dict[str, Any] = {"task_id": task}
    if seed is not None:
        body["seed"] = seed
    start = ok(http.post("/reset", json=body))
    sid = start["session_id"]
    results, actions = [start["observation"]], []

    def step(tool: str, args: dict) -> dict:
        if openenv_shape:
            payload = {
                "session_id": sid,
                "action": {"type": "call_tool", "tool_name": tool, "arguments": args},
            }
        else:
            payload = {"session_id": sid, "tool": tool, "arguments": args}
        reply = ok(http.post("/step", json=payload))
        if openenv_shape:  # OpenEnv's CallToolObservation; the tool JSON is result["data"]
            obs = reply["observation"]
            assert obs["tool_name"] == tool and obs["error"] is None
            assert obs["result"]["isError"] is False and obs["done"] == reply["done"]
            result = json.loads(obs["result"]["data"])
            return {"result": result, "reward": reply["reward"], "done": result.get("done")}
        return reply

    i = 0
    while True:
        state = step("get_queue_state", {})["result"]
        actions.append(("get_queue_state", {}))
        results.append(state)
        if state["done"]:
            break
        tool, args = choose(state, i)
        reply = step(tool, args)
        assert reply["reward"] == reply["result"]["step_reward"]
        assert reply["done"] == reply["result"]["done"]
        actions.append((tool, args))
        results.append(reply["result"])
        i += 1
    for tool in ("finalize_episode", "get_current_state"):
        actions.append((tool, {}))
        results.append(step(tool, {})["result"])
    return sid, actions, results

"""envs.server.client against a real server process: episodes equal ToolSession's over
HTTP and WebSocket, sync and async; errors carry ToolSession's codes; session ownership."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from server_fixtures import start_servers, strip_ids

from envs.server.client import Client, ServerError
from envs.tool_api import ToolError, ToolSession

CASES = [("task_1_easy", None), ("dynamic_queue", 42), ("mass_casualty", 99)]


@pytest.fixture(scope="module")
def server():
    (s,) = start_servers(())
    yield s
    s.stop()


def policy(state: dict, i: int) -> tuple[str, dict]:
    servable = [p for p in state["queue"] if p["can_serve_now"]]
    if i % 4 == 3 or not servable:
        return "wait", {}
    return "serve_patient", {"patient_id": servable[-1]["patient_id"]}


def play_reference(s: ToolSession, task, seed):
    trace = [("start_task", s.start_task(task, seed=seed))]
    i = 0
    while not (state := s.get_queue_state())["done"]:
        trace.append(("get_queue_state", state))
        tool, args = policy(state, i)
        trace.append((tool, getattr(s, tool)(**args)))
        i += 1
    trace.append(("get_queue_state", state))
    trace.append(("finalize_episode", s.finalize_episode()))
    trace.append(("get_current_state", s.get_current_state()))
    return trace


def play_sync(env, task, seed):
    """Queue Doctor's client loop: call_tool returns JSON strings."""
    trace = [("start_task", json.loads(env.call_tool("start_task", task_id=task, seed=seed)))]
    i = 0
    while not (state := json.loads(env.call_tool("get_queue_state")))["done"]:
        trace.append(("get_queue_state", state))
        tool, args = policy(state, i)
        trace.append((tool, json.loads(env.call_tool(tool, **args))))
        i += 1
    trace.append(("get_queue_state", state))
    trace.append(("finalize_episode", json.loads(env.call_tool("finalize_episode"))))
    trace.append(("get_current_state", env.call_tool_json("get_current_state")))
    return trace


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_sync_client_episodes_equal_tool_session(server, transport):
    with Client(server.url, transport=transport).sync() as env:
        assert env.reset()["observation"]["status"] == "ready"
        ref = ToolSession()  # one session plays the tasks in turn, like the client's
        for task, seed in CASES:
            got, want = play_sync(env, task, seed), play_reference(ref, task, seed)
            assert [t for t, _ in got] == [t for t, _ in want]
            for (tool, g), (_, w) in zip(got, want, strict=True):
                assert strip_ids(g) == strip_ids(w), tool  # every reward, state and score
        finals = env.call_tool_json("get_current_state")["finalized_scores"]
        assert set(finals) == {"basic_triage", "dynamic_queue", "mass_casualty"}
        assert env.call_tool_json("finalize_episode")["all_done"] is True


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_async_client_episode(server, transport):
    async def main():
        async with Client(server.url, transport=transport) as env:
            await env.reset(task_id="dynamic_queue", seed=7)
            trace, i = [], 0
            while not (state := await env.call_tool_json("get_queue_state"))["done"]:
                tool, args = policy(state, i)
                out = await env.step(tool, args)
                assert out["reward"] == out["result"]["step_reward"]
                trace.append((tool, args, out["result"]))
                i += 1
            return trace, await env.call_tool_json("finalize_episode")

    trace, final = asyncio.run(main())
    ref = ToolSession()
    ref.start_task("dynamic_queue", seed=7)
    for tool, args, result in trace:
        assert result == getattr(ref, tool)(**args)
    assert final == ref.finalize_episode()


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_errors_match_tool_session_codes_and_leave_session_usable(server, transport):
    ref = ToolSession()
    with Client(server.url, transport=transport).sync() as env:
        misuse = [
            ("serve_patient", {"patient_id": "P001"}, lambda: ref.serve_patient("P001")),
            ("start_task", {"task_id": "nope"}, lambda: ref.start_task("nope")),
            ("finalize_episode", {}, ref.finalize_episode),
        ]
        for tool, args, local in misuse:
            with pytest.raises(ToolError) as want:
                local()
            with pytest.raises(ServerError) as got:
                env.call_tool(tool, **args)
            assert isinstance(got.value, ToolError)
            assert got.value.code == want.value.code and got.value.message == want.value.message
            assert got.value.status in (400, 409)
        with pytest.raises(ServerError) as e:
            env.call_tool("serve_patient", patient_id=7)
        assert (e.value.status, e.value.code, e.value.payload["argument"]) == (
            422,
            "bad_argument",
            "patient_id",
        )
        with pytest.raises(ServerError) as e:
            env.call_tool("heal_everyone")
        assert e.value.status == 404 and "serve_patient" in str(e.value)
        env.call_tool("start_task", task_id="basic_triage")
        ref.start_task("basic_triage")
        assert json.loads(env.call_tool("serve_patient", patient_id="P001")) == ref.serve_patient(
            "P001"
        )
        assert [t["name"] for t in env.list_tools()][:2] == ["list_tasks", "start_task"]


def test_session_ownership_and_attach(server):
    base = server.health()["active_sessions"]
    with Client(server.url).sync() as env:
        env.reset(task_id="basic_triage", seed=1)
        env.call_tool("serve_patient", patient_id="P002")
        sid = env.session_id
        assert server.health()["active_sessions"] == base + 1
        # a second client attaches to the same session and continues the episode
        for transport in ("http", "ws"):
            with Client(server.url, transport=transport, session_id=sid).sync() as other:
                assert other.state()["state"]["active_task"] == "basic_triage"
                other.call_tool("wait")
        assert server.health()["active_sessions"] == base + 1  # attached clients leave it open
        state = env.call_tool_json("get_queue_state")
        assert state["step"] == 3  # serve + two waits, whoever sent them
    assert server.health()["active_sessions"] == base  # the owner deleted it on exit
    with pytest.raises(ServerError) as e:
        Client(server.url, session_id=sid).sync().call_tool("wait")
    assert e.value.status == 404 and e.value.code == "unknown_session"


def test_unreachable_server_raises_transport_error():
    with pytest.raises(httpx.ConnectError), Client("http://127.0.0.1:9").sync() as env:
        env.reset()

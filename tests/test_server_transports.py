"""The classic environment server's sessions and transports, as a real process on
127.0.0.1: sessions are isolated under concurrency, disconnects are survived, the
WebSocket protocol and MCP work, the session cap and idle timeout hold."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import httpx
from classic_server import CASES, TOOLS, choose, ok, reference, serve
from server_fixtures import HOST, ROOT
from websockets.sync.client import connect as ws_connect

from envs.tool_api import ToolSession

# -- concurrency -----------------------------------------------------------------------------


def test_50_concurrent_sessions_never_see_each_other(server):
    n = 50
    base = server.health()["active_sessions"]

    async def one(client: httpx.AsyncClient, k: int, gate: asyncio.Event) -> dict:
        task = CASES[k % 3][0]
        sid = (await client.post("/reset", json={"task_id": task, "seed": 1000 + k})).json()[
            "session_id"
        ]
        await gate.wait()
        t0 = time.monotonic()
        results, actions, i = [], [], 0
        while True:
            r = await client.post("/step", json={"session_id": sid, "tool": "get_queue_state"})
            state = r.json()["result"]
            if state["done"]:
                break
            tool, args = choose(state, i + k)  # every session plays differently
            r = await client.post(
                "/step", json={"session_id": sid, "tool": tool, "arguments": args}
            )
            assert r.status_code == 200, r.text
            results.append(r.json()["result"])
            actions.append((tool, args))
            i += 1
        r = await client.post("/step", json={"session_id": sid, "tool": "finalize_episode"})
        results.append(r.json()["result"])
        actions.append(("finalize_episode", {}))
        await client.delete(f"/sessions/{sid}")
        return {
            "k": k,
            "task": task,
            "t": (t0, time.monotonic()),
            "results": results,
            "actions": actions,
        }

    async def main() -> list[dict]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            gate = asyncio.Event()
            tasks = [asyncio.create_task(one(client, k, gate)) for k in range(n)]
            await asyncio.sleep(0.5)  # every session exists before anyone steps
            gate.set()
            return await asyncio.gather(*tasks)

    runs = asyncio.run(main())
    # all 50 episodes were in flight at the same time
    assert max(r["t"][0] for r in runs) < min(r["t"][1] for r in runs)
    scores = set()
    for r in runs:
        expected = reference(r["task"], 1000 + r["k"], r["actions"])[1:]
        assert r["results"] == expected, f"session {r['k']} diverged"
        scores.add(r["results"][-1]["score"])
    assert len(scores) > 5  # the sessions really played different episodes
    assert server.health()["active_sessions"] == base


# -- disconnects -----------------------------------------------------------------------------


def test_client_killed_mid_episode_over_websocket(server):
    base = server.health()["active_sessions"]
    # another client mid-episode over HTTP must not notice anything
    with httpx.Client(base_url=server.url, timeout=10) as http:
        sid = ok(http.post("/reset", json={"task_id": "dynamic_queue", "seed": 5}))["session_id"]
        ref = ToolSession()
        ref.start_task("dynamic_queue", seed=5)
        assert ok(http.post("/step", json={"session_id": sid, "tool": "wait"}))["result"] == (
            ref.wait()
        )
        script = textwrap.dedent(f"""
            import json, time
            from websockets.sync.client import connect
            ws = connect("ws://{HOST}:{server.port}/ws")
            ws.send(json.dumps({{"type": "reset", "data": {{"task_id": "mass_casualty"}}}}))
            ws.recv()
            ws.send(json.dumps({{"type": "step", "data": {{"tool": "wait"}}}}))
            ws.recv()
            print("mid-episode", flush=True)
            while True:
                ws.send(json.dumps({{"type": "step", "data": {{"tool": "get_queue_state"}}}}))
                ws.recv()
        """)
        child = subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout.readline().strip() == "mid-episode"
            assert server.health()["active_sessions"] == base + 2
            child.send_signal(signal.SIGKILL)  # no close frame, no goodbye
        finally:
            child.wait(10)
        deadline = time.monotonic() + 5
        while server.health()["active_sessions"] != base + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.health()["active_sessions"] == base + 1  # the dead client's freed
        assert server.alive()
        assert serve(http, sid, "P002")["result"] == ref.serve_patient("P002")
        http.delete(f"/sessions/{sid}")


def test_http_disconnects_leave_sessions_usable(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        sid = ok(http.post("/reset", json={"task_id": "basic_triage"}))["session_id"]
        serve(http, sid, "P001")
    # a client that sends half a request and vanishes
    raw = socket.create_connection((HOST, server.port))
    raw.sendall(
        b"POST /step HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 500\r\n\r\n{"session_id": "' + sid.encode()
    )
    raw.close()
    # a WebSocket attached to the HTTP session, dropped without a close frame
    with ws_connect(f"ws://{HOST}:{server.port}/ws?session_id={sid}") as ws:
        ws.send(json.dumps({"type": "step", "data": {"tool": "wait"}}))
        assert json.loads(ws.recv())["data"]["result"]["action"] == "wait()"
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
        ws.socket.close()
    time.sleep(0.2)
    # a new connection resumes the same episode: the session outlived every connection
    ref = ToolSession()
    ref.start_task("basic_triage")
    ref.serve_patient("P001")
    ref.wait()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        got = ok(http.post("/step", json={"session_id": sid, "tool": "get_queue_state"}))
        assert got["result"] == ref.get_queue_state()
        http.delete(f"/sessions/{sid}")
    assert server.alive()


def test_websocket_protocol(server):
    with ws_connect(f"ws://{HOST}:{server.port}/ws") as ws:

        def send(msg: Any) -> dict:
            ws.send(msg if isinstance(msg, str) else json.dumps(msg))
            return json.loads(ws.recv())

        st = send({"type": "state", "id": 1})
        assert st["type"] == "state" and st["id"] == 1 and st["data"]["transport"] == "ws"
        assert send({"type": "tools"})["data"]["tools"][0]["name"] == "list_tasks"
        obs = send({"type": "reset", "data": {"task_id": "basic_triage", "seed": 9}})
        assert obs["type"] == "observation" and obs["data"]["observation"]["seed"] == 9
        ref = ToolSession()
        ref.start_task("basic_triage", seed=9)
        errors = [
            ("{oops", 400, "malformed_json"),
            ("[]", 400, "invalid_request"),
            ({"type": "fly"}, 400, "invalid_request"),
            ({"type": "step", "data": {"tool": "nope"}}, 404, "unknown_tool"),
            ({"type": "step", "data": {"tool": "serve_patient"}}, 422, "bad_argument"),
            ({"type": "reset", "data": {"task_id": "x"}}, 400, "bad_argument"),
        ]
        for msg, status, code in errors:
            reply = send(msg)
            assert reply["type"] == "error", reply
            assert (reply["data"]["status"], reply["data"]["code"]) == (status, code)
        # OpenEnv's CallToolAction shape works too, and the episode was untouched
        reply = send(
            {
                "type": "step",
                "data": {
                    "type": "call_tool",
                    "tool_name": "serve_patient",
                    "arguments": {"patient_id": "P002"},
                },
            }
        )
        obs = reply["data"]["observation"]
        assert json.loads(obs["result"]["data"]) == ref.serve_patient("P002")
        assert obs["result"]["structuredContent"]["step_reward"] == reply["data"]["reward"]
        # ... with OpenEnv's error conventions: framework errors in observation.error
        reply = send({"type": "step", "data": {"type": "call_tool", "tool_name": "nope"}})
        assert reply["data"]["observation"]["error"]["error_type"] == "tool_not_found"
        listed = send({"type": "step", "data": {"type": "list_tools"}})
        assert len(listed["data"]["observation"]["tools"]) == len(TOOLS)
        edmarl = send({"type": "step", "data": {"tool": "get_queue_state"}})["data"]["result"]
        assert edmarl == ref.get_queue_state()
        assert send({"type": "close"})["type"] == "closed"


# -- MCP -------------------------------------------------------------------------------------


def test_mcp_endpoint(http):
    def rpc(method: str, params: dict | None = None, sid: str | None = None, rid: int = 1):
        headers = {"Accept": "application/json, text/event-stream"}
        if sid:
            headers["Mcp-Session-Id"] = sid
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if rid is not None:
            msg["id"] = rid
        return http.post("/mcp", json=msg, headers=headers)

    init = rpc(
        "initialize",
        {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    )
    assert init.status_code == 200
    sid = init.headers["mcp-session-id"]
    assert init.json()["result"]["protocolVersion"] == "2025-03-26"
    assert "tools" in init.json()["result"]["capabilities"]
    assert rpc("notifications/initialized", sid=sid, rid=None).status_code == 202
    tools = rpc("tools/list", sid=sid).json()["result"]["tools"]
    assert [t["name"] for t in tools] == TOOLS
    ref = ToolSession()
    for name, args, want in [
        (
            "start_task",
            {"task_id": "task_2_medium", "seed": 3},
            lambda: ref.start_task("task_2_medium", seed=3),
        ),
        ("serve_patient", {"patient_id": "P002"}, lambda: ref.serve_patient("P002")),
        ("list_tasks", {}, ref.list_tasks),
    ]:
        res = rpc("tools/call", {"name": name, "arguments": args}, sid=sid).json()["result"]
        expected = want()
        assert res["isError"] is False
        assert json.loads(res["content"][0]["text"]) == expected
        structured = res["structuredContent"]
        assert structured == (expected if isinstance(expected, dict) else {"result": expected})
    bad = rpc("tools/call", {"name": "nope", "arguments": {}}, sid=sid).json()
    assert bad["error"]["code"] == -32602 and "known tools" in bad["error"]["message"]
    bad = rpc("tools/call", {"name": "serve_patient", "arguments": {}}, sid=sid).json()
    assert bad["error"]["code"] == -32602 and "patient_id" in bad["error"]["message"]
    other = rpc("initialize", {"protocolVersion": "1999-01-01"}).headers["mcp-session-id"]
    res = rpc("tools/call", {"name": "wait"}, sid=other).json()["result"]
    assert res["isError"] is True and json.loads(res["content"][0]["text"])["code"] == (
        "no_active_task"
    )
    assert rpc("tools/call", {"name": "wait"}).status_code == 400  # no session header
    assert rpc("bogus/method", sid=sid).json()["error"]["code"] == -32601
    r = http.post("/mcp", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.json()["error"]["code"] == -32700  # JSON-RPC errors ride on HTTP 200
    assert http.post("/mcp", json={}).json()["error"]["code"] == -32600
    # OpenEnv's MCPToolClient flavour: session id in params, result["data"] = the JSON text
    osid = rpc("openenv/session/create").json()["result"]["session_id"]
    res = rpc(
        "tools/call",
        {"name": "start_task", "arguments": {"task_id": "basic_triage"}, "session_id": osid},
    ).json()["result"]
    assert json.loads(res["data"])["task_id"] == "basic_triage"
    closed = rpc("openenv/session/close", {"session_id": osid}).json()["result"]
    assert closed == {"session_id": osid, "closed": True}
    assert http.get("/mcp").status_code == 405
    for s in (sid, other):
        assert http.delete("/mcp", headers={"Mcp-Session-Id": s}).status_code == 204
    gone = rpc("tools/call", {"name": "wait"}, sid=sid)
    assert gone.status_code == 404  # the spec's signal to re-initialize


# -- cap and idle timeout (server with --max-sessions 3 --idle-timeout 1) ------------------


def test_session_cap_and_idle_expiry(servers):
    small = servers[1]
    with httpx.Client(base_url=small.url, timeout=10) as http:
        ids = [ok(http.post("/reset"))["session_id"] for _ in range(3)]
        assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
        over = http.post("/reset")
        assert over.status_code == 503
        assert over.json()["code"] == "session_limit" and "limit reached (3" in over.json()["error"]
        with ws_connect(f"ws://{HOST}:{small.port}/ws") as ws:
            reply = json.loads(ws.recv())
            assert reply["data"]["code"] == "session_limit"
        ok(http.delete(f"/sessions/{ids[0]}"))
        ids[0] = ok(http.post("/reset", json={"task_id": "basic_triage"}))["session_id"]
        # keep ids[0] busy past the timeout; the others sit idle
        for _ in range(6):
            time.sleep(0.3)
            ok(http.post("/step", json={"session_id": ids[0], "tool": "get_queue_state"}))
        for sid in ids[1:]:
            r = http.get("/state", params={"session_id": sid})
            assert r.status_code == 404 and r.json()["code"] == "session_expired"
            assert "expired after 1 s" in r.json()["error"]
        assert ok(http.get("/state", params={"session_id": ids[0]}))["calls"] >= 7
        health = ok(http.get("/health"))
        assert health["active_sessions"] == 1 and health["expired_total"] >= 2
        time.sleep(1.6)  # the reaper frees idle slots without any lookup
        assert ok(http.get("/health"))["active_sessions"] == 0

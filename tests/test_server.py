"""The environment server, as a real process on 127.0.0.1: HTTP episodes equal
ToolSession's, errors are 4xx and harmless, sessions are isolated under concurrency,
disconnects are survived, the cap and idle timeout hold; plus MCP, WebSocket and the
registry/store units."""

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
import pytest
from server_fixtures import HOST, ROOT, start_servers, strip_ids
from websockets.sync.client import connect as ws_connect

from envs.server.sessions import SessionConfig, SessionLimitError, SessionStore, UnknownSessionError
from envs.server.tools import DEFAULT_REGISTRY, ApiError, Arg, ArgumentError, ToolSpec
from envs.tool_api import ToolError, ToolSession

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


@pytest.fixture(scope="module")
def servers():
    # Classic-only servers: exactly Queue Doctor's tool set (the ed tools, on by
    # default: tests/test_server_ed.py).
    classic = ("--rulesets", "classic")
    main, small = start_servers(classic, ("--max-sessions", "3", "--idle-timeout", "1", *classic))
    yield main, small
    for s in (main, small):
        s.stop()


@pytest.fixture(scope="module")
def server(servers):
    return servers[0]


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        yield c


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


# -- episodes --------------------------------------------------------------------------------


def test_health_tools_docs(http):
    health = ok(http.get("/health"))
    assert health["status"] == "healthy" and health["max_sessions"] == 64
    assert health["idle_timeout_s"] == 900.0
    tools = ok(http.get("/tools"))["tools"]
    assert [t["name"] for t in tools] == TOOLS
    serve = tools[TOOLS.index("serve_patient")]
    assert serve["inputSchema"]["required"] == ["patient_id"]
    assert serve["inputSchema"]["properties"]["patient_id"]["type"] == "string"
    assert serve["_meta"]["edmarl/advances_time"] is True
    assert http.get("/docs").status_code == 200
    api = ok(http.get("/openapi.json"))
    assert {"/health", "/reset", "/step", "/state", "/sessions/{session_id}"} <= set(api["paths"])
    assert api["info"]["version"]
    meta = ok(http.get("/metadata"))
    assert meta["name"] == "edmarl" and meta["tools"] == TOOLS and "classic" in meta["rulesets"]
    schema = ok(http.get("/schema"))
    assert "session_id" in schema["action"]["properties"]
    assert {"result", "reward", "done"} <= set(schema["observation"]["properties"])
    assert "calls" in schema["state"]["properties"]


@pytest.mark.parametrize("task,seed", CASES)
def test_http_episode_equals_tool_session(http, task, seed):
    _, actions, results = play_http(http, task, seed, openenv_shape=seed == 5)
    expected = reference(task, seed, actions)
    assert len(results) == len(expected) > 10
    for got, want in zip(results, expected, strict=True):
        assert strip_ids(got) == strip_ids(want)
    final = results[-2]
    assert final["score"] == expected[-2]["score"] and 0.0 <= final["score"] <= 1.0
    rewards = [r["step_reward"] for r in results if isinstance(r, dict) and "step_reward" in r]
    assert rewards == [r["step_reward"] for r in expected if "step_reward" in r]
    assert any(r < 0 for r in rewards)  # the policy's unknown-id serves were charged


def test_state_and_reset_semantics(http):
    sid, *_ = play_http(http, "basic_triage", 3)
    st = ok(http.get("/state", params={"session_id": sid}))
    assert st["session_id"] == sid and st["transport"] == "http"
    assert st["state"]["finalized_scores"].keys() == {"basic_triage"}
    # reset keeps the id, forgets the episode
    again = ok(http.post("/reset", json={"session_id": sid}))
    assert again["session_id"] == sid and again["observation"]["status"] == "ready"
    assert ok(http.get("/state", params={"session_id": sid}))["state"]["active_task"] is None
    # a failed reset of an existing session keeps its current episode
    ok(http.post("/reset", json={"session_id": sid, "task_id": "dynamic_queue", "seed": 1}))
    ok(http.post("/step", json={"session_id": sid, "tool": "wait"}))
    before = ok(http.post("/step", json={"session_id": sid, "tool": "get_queue_state"}))
    bad = http.post("/reset", json={"session_id": sid, "task_id": "nope"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_argument"
    after = ok(http.post("/step", json={"session_id": sid, "tool": "get_queue_state"}))
    assert after["result"] == before["result"] and after["result"]["step"] == 1
    # a failed create does not leak a session
    n = ok(http.get("/health"))["active_sessions"]
    assert http.post("/reset", json={"task_id": "nope"}).status_code == 400
    assert ok(http.get("/health"))["active_sessions"] == n
    assert ok(http.delete(f"/sessions/{sid}"))["closed"] is True
    assert http.get("/state", params={"session_id": sid}).status_code == 404


# -- errors ----------------------------------------------------------------------------------


def test_bad_requests_are_4xx_with_clear_messages_and_harmless(http):
    sid = ok(http.post("/reset", json={"task_id": "mass_casualty", "seed": 11}))["session_id"]
    ref = ToolSession()
    ref.start_task("mass_casualty", seed=11)
    for pid in ("P002", "P003"):
        assert serve(http, sid, pid)["result"] == ref.serve_patient(pid)

    def post(path: str, content: str | bytes) -> httpx.Response:
        return http.post(path, content=content, headers={"Content-Type": "application/json"})

    cases = [
        (post("/step", '{"session_id": "' + sid + '", "tool": '), 400, "malformed_json", "JSON"),
        (post("/step", "not json at all"), 400, "malformed_json", "malformed JSON"),
        (post("/reset", "{'single': 'quotes'}"), 400, "malformed_json", "position"),
        (post("/step", "[1, 2]"), 422, "invalid_request", "JSON object"),
        (post("/step", ""), 422, "invalid_request", "request body is required"),
        (http.post("/step", json={"tool": "wait"}), 422, "invalid_request", "session_id"),
        (
            http.post("/step", json={"session_id": sid, "tool": "wait", "extra": 1}),
            422,
            "invalid_request",
            "extra: unexpected field",
        ),
        (http.post("/step", json={"session_id": sid}), 422, "invalid_request", "exactly one"),
        (
            http.post("/step", json={"session_id": sid, "tool": "teleport"}),
            404,
            "unknown_tool",
            "known tools: list_tasks, start_task",
        ),
        (
            http.post("/step", json={"session_id": sid, "tool": "serve_patient"}),
            422,
            "bad_argument",
            "missing required argument 'patient_id'",
        ),
        (
            http.post(
                "/step",
                json={"session_id": sid, "tool": "serve_patient", "arguments": {"patient_id": 3}},
            ),
            422,
            "bad_argument",
            "'patient_id' must be string, got integer",
        ),
        (
            http.post(
                "/step", json={"session_id": sid, "tool": "wait", "arguments": {"now": True}}
            ),
            422,
            "bad_argument",
            "unexpected argument(s) ['now']",
        ),
        (
            http.post(
                "/step",
                json={
                    "session_id": sid,
                    "tool": "start_task",
                    "arguments": {"task_id": "mass_casualty", "seed": True},
                },
            ),
            422,
            "bad_argument",
            "'seed' must be integer or null, got boolean",
        ),
        (
            http.post("/step", json={"session_id": sid, "tool": "wait", "arguments": [1]}),
            422,
            "invalid_request",
            "arguments",
        ),
        (
            http.post(
                "/step",
                json={"session_id": sid, "tool": "start_task", "arguments": {"task_id": "surgery"}},
            ),
            400,
            "bad_argument",
            "unknown task 'surgery'",
        ),
        (
            http.post(
                "/step",
                json={
                    "session_id": sid,
                    "tool": "start_task",
                    "arguments": {"task_id": "basic_triage", "ruleset": "ed"},
                },
            ),
            400,
            "bad_argument",
            "ruleset 'ed'",
        ),
        (
            http.post("/step", json={"session_id": "0" * 32, "tool": "wait"}),
            404,
            "unknown_session",
            "POST /reset",
        ),
        (http.post("/reset", json={"seed": "42"}), 422, "invalid_request", "seed"),
        (http.post("/reset", json={"seed": 4}), 422, "invalid_request", "need task_id"),
        (http.get("/state"), 422, "invalid_request", "session_id (query parameter)"),
        (http.get("/nowhere"), 404, "not_found", "/nowhere"),
        (http.put("/step", json={}), 405, "method_not_allowed", ""),
        (post("/step", b"{" + b" " * (1 << 20) + b"}"), 413, "body_too_large", "bytes"),
    ]
    for resp, status, code, text in cases:
        assert resp.status_code == status, (resp.request.content[:80], resp.text)
        body = resp.json()
        assert body["code"] == code, body
        assert text in body["error"], body
    # the engine's own refusals keep ToolSession's codes
    fresh = ok(http.post("/reset"))["session_id"]
    r = http.post("/step", json={"session_id": fresh, "tool": "wait"})
    assert r.status_code == 409 and r.json()["code"] == "no_active_task"

    # none of that touched the episode: it continues exactly like the reference
    got = ok(http.post("/step", json={"session_id": sid, "tool": "get_current_state"}))
    assert strip_ids(got["result"]) == strip_ids(ref.get_current_state())
    got = ok(http.post("/step", json={"session_id": sid, "tool": "wait"}))
    assert got["result"] == ref.wait()
    got = ok(http.post("/step", json={"session_id": sid, "tool": "finalize_episode"}))
    assert got["result"] == ref.finalize_episode()


def test_episode_finished_then_finalize(http):
    sid, *_ = play_http(http, "basic_triage", None)
    r = http.post("/step", json={"session_id": sid, "tool": "wait"})
    assert r.status_code == 409 and r.json()["code"] == "episode_finished"
    assert "finalize_episode" in r.json()["error"]
    assert ok(http.post("/step", json={"session_id": sid, "tool": "finalize_episode"}))["result"]


def test_host_header_guard(server):
    # DNS-rebinding guard: a loopback-bound server only answers loopback Host names.
    r = httpx.get(f"{server.url}/health", headers={"Host": "evil.example:7860"})
    assert r.status_code == 400 and r.json()["code"] == "bad_host"
    assert "evil.example" in r.json()["error"]
    for host, status in [("evil.example", b"403"), (f"127.0.0.1:{server.port}", b"101")]:
        with socket.create_connection((HOST, server.port)) as raw:
            raw.sendall(
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert raw.recv(64).split(b" ")[1] == status
    assert httpx.get(f"http://localhost:{server.port}/health").status_code == 200


def test_binds_loopback_only(server):
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outward interface
        addr = probe.getsockname()[0]
        probe.close()
    except OSError:
        addr = "127.0.0.1"
    if addr.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    with pytest.raises(OSError):
        socket.create_connection((addr, server.port), timeout=2).close()


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


# -- units: registry, store, pluggable tools -------------------------------------------------


def test_registry_validation_units():
    spec = DEFAULT_REGISTRY.get("start_task")
    assert spec.bind({"task_id": "x"}) == {"task_id": "x"}
    assert spec.bind({"task_id": "x", "seed": None, "ruleset": "classic"})["seed"] is None
    for args, name in [
        ({}, "task_id"),
        ({"task_id": 1}, "task_id"),
        ({"task_id": "x", "seed": 1.5}, "seed"),
        ({"task_id": "x", "z": 0}, "z"),
    ]:
        with pytest.raises(ArgumentError) as e:
            spec.bind(args)
        assert e.value.extra["argument"] == name and e.value.status == 422
    with pytest.raises(ValueError, match="already registered"):
        DEFAULT_REGISTRY.register(spec)
    assert Arg("x", float).accepts(3) and not Arg("x", int).accepts(True)


def test_store_units_with_fake_clock():
    now = [0.0]
    store = SessionStore(
        ToolSession, SessionConfig(max_sessions=2, idle_timeout_s=10), clock=lambda: now[0]
    )
    a, b = store.create(), store.create()
    with pytest.raises(SessionLimitError):
        store.create()
    now[0] = 5
    with store.use(a.id):
        now[0] = 30  # in use across the timeout: never reaped mid-call
        assert store.reap() == [b.id]
    assert a.id in store
    now[0] = 39
    assert store.get(a.id) is a
    now[0] = 41
    with pytest.raises(UnknownSessionError) as e:
        store.get(a.id)
    assert e.value.code == "session_expired"
    with pytest.raises(UnknownSessionError) as e:
        store.get("never")
    assert e.value.code == "unknown_session"
    assert len(store) == 0 and store.stats()["expired_total"] == 2


def test_new_tools_plug_in_without_touching_the_server():
    """How the ed tools will arrive: a spec in a registry, a method on the session."""
    from fastapi.testclient import TestClient

    from envs.server.app import ServerConfig, create_app

    class EdSession(ToolSession):
        def triage_patient(self, patient_id: str, category: int) -> dict:
            if self.ruleset is None:
                raise ToolError("no_active_task", "start a task first")
            return {"patient_id": patient_id, "category": category}

    reg = DEFAULT_REGISTRY.copy()
    reg.register(
        ToolSpec(
            "triage_patient",
            "Assign an MTS category.",
            args=(Arg("patient_id", str), Arg("category", int)),
        )
    )
    reg.register(
        ToolSpec(
            "dispense_drug",
            "Give a drug.",
            args=(Arg("patient_id", str),),
            rulesets=frozenset({"ed"}),
        )
    )
    config = ServerConfig(allowed_hosts=("testserver",), rulesets=("classic",))
    app = create_app(config, reg, EdSession)
    with TestClient(app) as c:
        assert "triage_patient" in [t["name"] for t in c.get("/tools").json()["tools"]]
        sid = c.post("/reset", json={"task_id": "basic_triage"}).json()["session_id"]
        r = c.post(
            "/step",
            json={
                "session_id": sid,
                "tool": "triage_patient",
                "arguments": {"patient_id": "P001", "category": 1},
            },
        )
        assert r.status_code == 200 and r.json()["result"] == {"patient_id": "P001", "category": 1}
        r = c.post(
            "/step",
            json={
                "session_id": sid,
                "tool": "triage_patient",
                "arguments": {"patient_id": "P001", "category": "1"},
            },
        )
        assert r.status_code == 422 and r.json()["argument"] == "category"
        r = c.post(
            "/step",
            json={"session_id": sid, "tool": "dispense_drug", "arguments": {"patient_id": "P001"}},
        )
        assert r.status_code == 409 and r.json()["code"] == "wrong_ruleset"
    reg.register(ToolSpec("end_step", "End the step."))
    with TestClient(create_app(config, reg)) as c:
        sid = c.post("/reset").json()["session_id"]
        r = c.post("/step", json={"session_id": sid, "tool": "end_step"})
        assert r.status_code == 501 and r.json()["code"] == "not_implemented"
    assert "triage_patient" not in DEFAULT_REGISTRY  # copies never leak into the default


def test_api_error_shape():
    e = ApiError(409, "x", "msg", extra_field=1)
    assert e.as_dict() == {"error": "msg", "code": "x", "extra_field": 1}


def test_bench_script_smoke(server, tmp_path):
    from experiments.bench_server import main

    out = tmp_path / "bench.json"
    argv = f"--url {server.url} --requests 40 --time-cap 10 --warmup 5 --out {out}".split()
    assert main(argv) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["transport"], r["clients"]) for r in rows] == [
        ("http", 1),
        ("http", 16),
        ("ws", 1),
        ("ws", 16),
    ]
    for r in rows:
        assert r["serve_requests"] == 40 and not r["hit_time_cap"]
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] and r["serve_rps"] > 0
    with pytest.raises(SystemExit, match="loopback"):
        main(["--url", "http://example.com:7860", "--out", str(out)])


def test_cli_arguments(capsys):
    from envs.server.app import ServerConfig, parse_args

    cfg = parse_args(["--port", "8123", "--max-sessions", "5", "--idle-timeout", "2.5"])
    assert cfg == ServerConfig(port=8123, max_sessions=5, idle_timeout_s=2.5)
    assert cfg.host == "127.0.0.1" and cfg.host_allowlist() == ("127.0.0.1", "localhost", "[::1]")
    exposed = parse_args(["--host", "0.0.0.0", "--token", "t" * 16])
    assert exposed.host_allowlist() == ("*",)
    for bad, msg in [
        ("--host=0.0.0.0", "set a bearer token"),
        ("--max-sessions=0", "max_sessions"),
        ("--idle-timeout=0", "idle_timeout"),
        ("--port=70000", "port"),
    ]:
        with pytest.raises(SystemExit):
            parse_args([bad])
        assert msg in capsys.readouterr().err

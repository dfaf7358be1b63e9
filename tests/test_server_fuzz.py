"""Property-based fuzzing (hypothesis) of the server's HTTP, WebSocket and MCP endpoints:
whatever a client sends, the answer is a JSON 4xx (or a JSON-RPC error) — never a 500 —
no other session's episode changes, and afterwards the server still plays a good
episode exactly like ``MultiRulesetSession``."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.ed_tool_api import MultiRulesetSession
from envs.server.app import ServerConfig, create_app
from envs.server.tools import ED_REGISTRY

TOOLS = list(ED_REGISTRY.names())
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["P001", "P003", "basic_triage", "ed", "classic", "aspirin", "triage_nurse"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
arg_names = st.sampled_from(
    ["task_id", "seed", "ruleset", "patient_id", "category", "drug", "role"]
)
arguments = st.one_of(
    json_values, st.dictionaries(arg_names | st.text(max_size=8), json_values, max_size=4)
)


def _client() -> TestClient:
    config = ServerConfig(
        allowed_hosts=("testserver",), max_sessions=100_000, max_sessions_per_client=100_000
    )
    return TestClient(create_app(config))


class World:
    """Two bystander sessions (classic and ed) whose episodes fuzzing must not touch."""

    def __init__(self, c: TestClient) -> None:
        self.c = c
        self.bystanders = {}
        for ruleset, task in (("classic", "dynamic_queue"), ("ed", "basic_triage")):
            body = {"task_id": task, "seed": 5, "ruleset": ruleset}
            sid = c.post("/reset", json=body).json()["session_id"]
            self.bystanders[sid] = self.look(sid)
        self.fuzz_sid = c.post("/reset").json()["session_id"]

    def look(self, sid: str) -> Any:
        r = self.c.post("/step", json={"session_id": sid, "tool": "get_queue_state"})
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def untouched(self) -> None:
        for sid, state in self.bystanders.items():
            assert self.look(sid) == state, "fuzzing changed another session's episode"


def _json_error(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body["error"], str) and isinstance(body["code"], str)


def _fuzz_http(world: World) -> None:
    own = st.just(world.fuzz_sid)

    @FUZZ
    @given(
        sid=own | st.text(max_size=40) | json_values,
        tool=st.sampled_from(TOOLS) | st.text(max_size=20) | json_values,
        args=arguments,
        raw=st.none() | st.binary(max_size=200) | st.text(max_size=200),
        reset=st.dictionaries(
            st.sampled_from(["task_id", "seed", "ruleset", "session_id", "x"]),
            json_values,
            max_size=4,
        ),
    )
    def run(sid, tool, args, raw, reset):
        c = world.c
        _json_error(c.post("/step", json={"session_id": sid, "tool": tool, "arguments": args}))
        action = {"type": "call_tool", "tool_name": tool, "arguments": args}
        _json_error(c.post("/step", json={"session_id": sid, "action": action}))
        if raw is not None:
            _json_error(c.post("/step", content=raw, headers={"Content-Type": "application/json"}))
        if "session_id" in reset:
            reset["session_id"] = world.fuzz_sid
        r = c.post("/reset", json=reset)
        _json_error(r)
        if r.status_code == 200 and r.json()["session_id"] != world.fuzz_sid:
            c.delete(f"/sessions/{r.json()['session_id']}")
        world.untouched()

    run()


def _fuzz_ws(world: World) -> None:
    messages = st.one_of(
        st.text(max_size=100),
        st.builds(
            lambda kind, data, mid: json.dumps({"type": kind, "id": mid, "data": data}),
            st.sampled_from(["step", "reset", "state", "tools", "list_tools"])
            | st.text(max_size=8),
            st.fixed_dictionaries({"tool": st.sampled_from(TOOLS), "arguments": arguments})
            | st.fixed_dictionaries({"tool_name": st.sampled_from(TOOLS), "arguments": arguments})
            | json_values,
            json_values,
        ),
    )

    @FUZZ
    @given(batch=st.lists(messages, min_size=1, max_size=5))
    def run(batch):
        with world.c.websocket_connect("/ws") as ws:
            for raw in batch:
                ws.send_text(raw)
                reply = ws.receive_json()
                assert reply["type"] in ("observation", "state", "tools", "error"), reply
                if reply["type"] == "error":
                    assert reply["data"]["status"] < 500, reply
        world.untouched()

    run()


def _fuzz_mcp(world: World) -> None:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    sid = world.c.post("/mcp", json=init).headers["mcp-session-id"]

    @FUZZ
    @given(
        method=st.sampled_from(["tools/call", "tools/list", "ping", "initialize"])
        | st.text(max_size=12),
        name=st.sampled_from(TOOLS) | json_values,
        args=arguments,
        mid=json_values,
        params=st.none() | json_values,
        header=st.booleans(),
    )
    def run(method, name, args, mid, params, header):
        msg = {"jsonrpc": "2.0", "id": mid, "method": method}
        msg["params"] = {"name": name, "arguments": args} if params is None else params
        headers = {"Mcp-Session-Id": sid} if header else {}
        r = world.c.post("/mcp", json=msg, headers=headers)
        assert r.status_code in (200, 202, 400, 404), (r.status_code, r.text[:300])
        if r.status_code != 202:
            assert r.json()["jsonrpc"] == "2.0"
        if method == "initialize" and "result" in r.json():  # an error reply opens nothing
            world.c.request(
                "DELETE", "/mcp", headers={"Mcp-Session-Id": r.headers["mcp-session-id"]}
            )
        world.untouched()

    run()


def _play(c: TestClient, ruleset: str, task: str, seed: int) -> None:
    """A full good episode over HTTP, step by step equal to the in-process session."""
    ref = MultiRulesetSession()
    first = c.post("/reset", json={"task_id": task, "seed": seed, "ruleset": ruleset}).json()
    expected = ref.start_task(task, seed=seed, ruleset=ruleset)
    strip = lambda d: {k: v for k, v in d.items() if k != "episode_id"}  # noqa: E731
    assert strip(first["observation"]) == strip(expected)
    sid = first["session_id"]

    def call(tool: str, **args: Any) -> Any:
        r = c.post("/step", json={"session_id": sid, "tool": tool, "arguments": args})
        assert r.status_code == 200, r.text
        got, want = r.json()["result"], getattr(ref, tool)(**args)
        assert got == want
        return got

    for _ in range(200):
        state = call("get_queue_state")
        if state["done"]:
            break
        if ruleset == "classic":
            servable = [p["patient_id"] for p in state["queue"] if p["can_serve_now"]]
            call("serve_patient", patient_id=servable[0]) if servable else call("wait")
        else:
            call("end_step")
    assert call("finalize_episode")["score"] > 0


def test_fuzzed_http_ws_mcp_then_good_episodes():
    with _client() as c:
        world = World(c)
        _fuzz_http(world)
        _fuzz_ws(world)
        _fuzz_mcp(world)
        world.untouched()
        assert c.get("/health").json()["status"] == "healthy"
        _play(c, "classic", "mass_casualty", 42)
        _play(c, "ed", "basic_triage", 3)

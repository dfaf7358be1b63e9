"""The classic environment server, as a real process on 127.0.0.1: HTTP episodes equal
ToolSession's, errors are 4xx and harmless, the host guard and loopback binding hold;
plus the registry/store units, the benchmark script and the CLI. Concurrency,
disconnects, WebSocket, MCP, the cap and the idle timeout: tests/test_server_transports.py."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from classic_server import CASES, TOOLS, ok, play_http, reference, serve
from server_fixtures import HOST, strip_ids

from envs.server.sessions import SessionConfig, SessionLimitError, SessionStore, UnknownSessionError
from envs.server.tools import DEFAULT_REGISTRY, ApiError, Arg, ArgumentError, ToolSpec
from envs.tool_api import ToolError, ToolSession

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

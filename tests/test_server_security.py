"""Server hardening (envs.server.security, the session policy): every probe of issue 19
ends in a 4xx with a named code — bearer token, Host and Origin checks on every start
path, JSON-only bodies, the body limit on bytes actually read (chunked included),
capped strings and clipped echoes, per-client quotas with LRU eviction — plus the real
start paths (``uvicorn envs.server.app:app``, ``python -m envs.server``) on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from server_fixtures import HOST, ROOT, free_port
from starlette.websockets import WebSocketDisconnect

from envs.server.app import ServerConfig, create_app
from envs.server.sessions import (
    ClientQuotaError,
    SessionConfig,
    SessionLimitError,
    SessionStore,
    UnknownSessionError,
)
from envs.tool_api import ToolSession

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def app_client(**kw) -> TestClient:
    config = ServerConfig(allowed_hosts=("testserver",), rulesets=("classic",), **kw)
    return TestClient(create_app(config))


def code(resp: httpx.Response) -> str:
    return resp.json()["code"]


# -- token -----------------------------------------------------------------------------------


def test_bearer_token_guards_every_route_but_health():
    with app_client(token=TOKEN) as c:
        assert c.get("/health").status_code == 200  # liveness probes need no token
        for resp in (
            c.post("/reset"),
            c.get("/tools"),
            c.post("/reset", headers={"Authorization": "Bearer wrong-token-0000000"}),
            c.post("/reset", headers={"Authorization": TOKEN}),
            c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}),
            c.get("/console/api/options"),  # the console's data routes need it too
            c.get("/console/api/runs"),
        ):
            assert resp.status_code == 401 and code(resp) == "unauthorized", resp.text
            assert resp.headers["www-authenticate"] == "Bearer"
        # The console's page and static files load by navigation (no header possible).
        page = c.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert c.get("/console/console.js").status_code == 200
        assert c.get("/console/api/options", headers=AUTH).status_code == 200
        sid = c.post("/reset", json={"task_id": "basic_triage"}, headers=AUTH).json()["session_id"]
        r = c.post("/step", json={"session_id": sid, "tool": "wait"}, headers=AUTH)
        assert r.status_code == 200
        with pytest.raises(WebSocketDisconnect) as e, c.websocket_connect("/ws"):
            pass
        assert e.value.code == 1008
        with c.websocket_connect("/ws", headers=AUTH) as ws:
            ws.send_json({"type": "state", "id": 1})
            assert ws.receive_json()["type"] == "state"


def test_exposed_bind_needs_a_token():
    with pytest.raises(ValueError, match="set a bearer token"):
        ServerConfig(host="0.0.0.0")
    with pytest.raises(ValueError, match="16 printable"):
        ServerConfig(token="short")
    assert ServerConfig(host="0.0.0.0", token=TOKEN).host_allowlist() == ("*",)
    assert "s3cret" not in repr(ServerConfig(token=TOKEN))  # never logged


# -- the module-level app (uvicorn envs.server.app:app) --------------------------------------


def test_module_app_config_keeps_the_guards():
    app = create_app(ServerConfig.from_env({}))
    with TestClient(app, base_url="http://127.0.0.1") as c:  # reached on loopback
        assert c.post("/reset").status_code == 200
        r = c.get("/health", headers={"Host": "evil.example"})
        assert r.status_code == 400 and code(r) == "bad_host"
    allow = {"EDMARL_ALLOWED_HOSTS": "testserver"}
    with TestClient(create_app(ServerConfig.from_env(allow))) as c:  # reached off loopback
        r = c.post("/reset")
        assert r.status_code == 403 and code(r) == "token_required"
        assert "EDMARL_TOKEN" in r.json()["error"]
    env = {"EDMARL_TOKEN": TOKEN}
    with TestClient(create_app(ServerConfig.from_env(env))) as c:  # a token opens it
        assert c.post("/reset", headers=AUTH).status_code == 200
        assert c.post("/reset").status_code == 401
    with pytest.raises(ValueError, match="EDMARL_MAX_SESSIONS='abc': expected int"):
        ServerConfig.from_env({"EDMARL_MAX_SESSIONS": "abc"})


def _run(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd} not ready")


@pytest.mark.parametrize("how", ["uvicorn", "python -m envs.server"])
def test_real_start_paths_refuse_foreign_hosts_and_chunked_floods(how):
    port = free_port()
    if how == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "envs.server.app:app", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "envs.server", "--port", str(port)]
    cmd += ["--host", HOST, "--log-level", "warning"]
    proc = _run(cmd, port)
    try:
        url = f"http://{HOST}:{port}"
        r = httpx.get(f"{url}/health", headers={"Host": "evil.example"})
        assert r.status_code == 400 and code(r) == "bad_host"
        r = httpx.post(f"{url}/reset", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and code(r) == "bad_origin"
        r = httpx.post(f"{url}/reset", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and code(r) == "unsupported_media_type"
        for mib in (2, 8):  # chunked, no Content-Length: counted as it is read
            status, body = _chunked_post(port, "/step", mib << 20)
            assert status == 413 and json.loads(body)["code"] == "body_too_large"
        assert httpx.post(f"{url}/reset", json={"task_id": "basic_triage"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def _chunked_post(port: int, path: str, size: int) -> tuple[int, bytes]:
    """POST ``size`` bytes of JSON-ish body in 64 KiB chunks; (status, body)."""
    with socket.create_connection((HOST, port), timeout=30) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json"
            "\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b" " * (64 << 10)
        try:
            for _ in range(size // len(chunk)):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the flood ended
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 20:
            more = s.recv(65536)
            if not more:
                break
            data += more
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


# -- origin, content type, body size ---------------------------------------------------------


def test_cross_origin_pages_and_non_json_bodies_are_refused():
    with app_client(allowed_origins=("https://console.example",)) as c:
        before = c.get("/health").json()["active_sessions"]
        for origin in ("http://evil.example", "null", "http://testserver.evil"):
            r = c.post("/reset", headers={"Origin": origin})
            assert r.status_code == 403 and code(r) == "bad_origin"
        with (
            pytest.raises(WebSocketDisconnect),
            c.websocket_connect("/ws", headers={"Origin": "http://evil.example"}),
        ):
            pass
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            r = c.post("/reset", content=b"{}", headers={"Content-Type": ctype})
            assert r.status_code == 415 and code(r) == "unsupported_media_type"
        assert c.get("/health").json()["active_sessions"] == before  # nothing was created
        assert c.post("/reset", headers={"Origin": "http://testserver"}).status_code == 200
        assert c.post("/reset", headers={"Origin": "https://console.example"}).status_code == 200
        r = c.post(
            "/reset", content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert r.status_code == 200


def test_chunked_body_limit_in_process():
    with app_client(max_body_bytes=4096) as c:

        def chunks(n: int):
            yield b'{"session_id": "'
            for _ in range(n):
                yield b"x" * 1024
            yield b'"}'

        r = c.post("/step", content=chunks(8), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and code(r) == "body_too_large"
        r = c.post("/step", content=chunks(1), headers={"Content-Type": "application/json"})
        assert r.status_code == 422  # under the limit: parsed and refused on its merits


# -- strings and echoes ----------------------------------------------------------------------


def test_huge_strings_are_refused_and_never_echoed_whole():
    with app_client() as c:
        sid = c.post("/reset", json={"task_id": "basic_triage"}).json()["session_id"]
        look = {"session_id": sid, "tool": "get_queue_state"}
        before = c.post("/step", json=look).json()["result"]
        long = "A" * 100_000
        cases = [
            c.post("/reset", json={"task_id": long}),
            c.post("/step", json={"session_id": sid, "tool": long}),
            c.post("/step", json={"session_id": long, "tool": "wait"}),
            c.post("/step", json={"session_id": sid, "tool": "start_task",
                                  "arguments": {"task_id": long}}),
            c.post("/step", json={"session_id": sid, "tool": "serve_patient",
                                  "arguments": {"patient_id": "P" * 500_000}}),
            c.post("/step", json={"session_id": sid, "tool": "wait", "arguments": {long: 1}}),
            c.get("/state", params={"session_id": long[:5000]}),
            c.get("/" + long[:5000]),
            c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": long}),
        ]  # fmt: skip
        for r in cases:
            assert 400 <= r.status_code < 500 or "error" in r.json(), r.text[:200]
            assert len(r.content) < 1500, (r.status_code, r.text[:200])
        r = c.post("/step", json={"session_id": sid, "tool": "serve_patient",
                                  "arguments": {"patient_id": "P" * 500_000}})  # fmt: skip
        assert r.status_code == 422 and "500000 characters long; at most 256" in r.json()["error"]
        with c.websocket_connect("/ws") as ws:
            ws.send_json({"type": long, "id": 1})
            assert len(json.dumps(ws.receive_json())) < 1500
        # the episode was never touched
        assert c.post("/step", json=look).json()["result"] == before


# -- session policy --------------------------------------------------------------------------


def test_per_client_quota_and_lru_eviction_units():
    now = [0.0]
    cfg = SessionConfig(max_sessions=4, idle_timeout_s=100, max_per_client=2, evict_idle_s=10)
    store = SessionStore(ToolSession, cfg, clock=lambda: now[0])
    a1 = store.create("http", "10.0.0.1")
    now[0] = 1
    a2 = store.create("http", "10.0.0.1")
    with pytest.raises(ClientQuotaError) as e:  # both used within evict_idle_s
        store.create("http", "10.0.0.1")
    assert e.value.status == 429 and e.value.code == "client_session_quota"
    now[0] = 20
    a3 = store.create("http", "10.0.0.1")  # its own least recently used idle one goes
    with pytest.raises(UnknownSessionError) as e:
        store.get(a1.id)
    assert e.value.code == "session_evicted" and "quota of 2" in e.value.message
    assert a2.id in store and a3.id in store
    b1, b2 = store.create("http", "10.0.0.2"), store.create()  # local: no per-client quota
    with store.use(a2.id):
        pass  # used just now
    with pytest.raises(SessionLimitError):  # full, nobody idle long enough
        store.create()
    now[0] = 40
    with store.use(a2.id):  # in use: never evicted
        c = store.create("http", "10.0.0.3")
    with pytest.raises(UnknownSessionError, match="server was full"):
        store.get(a3.id)
    assert {a2.id, b1.id, b2.id, c.id} == {s for s in store._sessions}
    assert store.stats()["evicted_total"] == 2 and store.stats()["expired_total"] == 0


def test_a_flood_cannot_lock_other_clients_out():
    # One remote client floods /reset; it can only ever hold its quota, so a second
    # client still gets a session (TestClient connections come from "testclient").
    with app_client(max_sessions=8, max_sessions_per_client=3) as c:
        ids = [c.post("/reset").json()["session_id"] for _ in range(3)]
        r = c.post("/reset")
        assert r.status_code == 429 and code(r) == "client_session_quota"
        store = c.app.state.store
        store.config = SessionConfig(max_sessions=8, max_per_client=3, evict_idle_s=0)
        assert c.post("/reset").status_code == 200  # its own LRU idle session made room
        r = c.post("/step", json={"session_id": ids[0], "tool": "wait"})
        assert r.status_code == 404 and code(r) == "session_evicted"
        assert "least recently used" in r.json()["error"]
        assert store.create("http", "192.0.2.7")  # another client is never starved


def test_seeds_are_validated_the_same_on_every_transport():
    message = "seed must be a non-negative integer"
    with TestClient(create_app(ServerConfig(allowed_hosts=("testserver",)))) as c:
        for ruleset in ("classic", "ed"):
            body = {"task_id": "basic_triage", "seed": -1, "ruleset": ruleset}
            r = c.post("/reset", json=body)
            assert r.status_code == 400 and code(r) == "bad_argument" and message in r.text
            with c.websocket_connect("/ws") as ws:
                ws.send_json({"type": "reset", "id": 1, "data": body})
                reply = ws.receive_json()
                assert reply["data"]["code"] == "bad_argument" and message in reply["data"]["error"]
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize"}
            sid = c.post("/mcp", json=init).headers["mcp-session-id"]
            call = {"name": "start_task", "arguments": body}
            r = c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                     "params": call}, headers={"Mcp-Session-Id": sid})  # fmt: skip
            assert r.json()["result"]["isError"] and message in r.text
        r = c.post("/reset", json={"task_id": "basic_triage", "seed": 1.5})
        assert r.status_code == 422 and "seed" in r.json()["error"]


def test_soak_script_smoke(tmp_path):
    from experiments.soak_server import main

    out = tmp_path / "soak.json"
    assert (
        main(["--minutes", "0.1", "--clients", "3", "--sample-every", "2", "--out", str(out)]) == 0
    )
    doc = json.loads(out.read_text())
    assert doc["counts"]["episodes"] >= 3 and not [
        k for k in doc["counts"] if k.startswith("error")
    ]
    assert len(doc["samples"]) >= 3 and all(
        s["rss_kib"] > 0 and s["open_fds"] > 0 for s in doc["samples"]
    )

"""Test helpers: a real ``envs.server.app`` process on loopback, a tiny fake
OpenAI-compatible chat server (also on loopback) so the LLM baseline needs no model, and
``strip_ids`` to compare server replies with ToolSession's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def strip_ids(obj: Any) -> Any:
    """Tool JSON without the per-session random episode id (so that a server's replies
    compare equal to an in-process ToolSession's)."""
    if isinstance(obj, dict):
        return {k: strip_ids(v) for k, v in obj.items() if k != "episode_id"}
    if isinstance(obj, list):
        return [strip_ids(v) for v in obj]
    return obj


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m envs.server.app --port <free>`` in a subprocess; ``start()`` returns at
    once, ``wait_ready()`` polls /health (so several servers can boot in parallel)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.args = args
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "envs.server.app", "--port", str(self.port)]
        cmd += ["--log-level", "warning", *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        return self

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/health", timeout=5.0).json()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def start_servers(*arg_lists: tuple[str, ...]) -> list[ServerProcess]:
    servers = [ServerProcess(*args).start() for args in arg_lists]
    try:
        for s in servers:
            s.wait_ready()
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


# -- fake OpenAI-compatible chat server ---------------------------------------------------

Policy = Callable[[list[dict[str, str]]], str]


class FakeOpenAI:
    """``POST /v1/chat/completions`` answered by ``policy(messages)``.

    ``fail_with`` is a queue of HTTP statuses returned (one per request) before the
    policy is consulted, to exercise retries. Every request is recorded."""

    def __init__(self, policy: Policy, fail_with: tuple[int, ...] = ()) -> None:
        self.policy = policy
        self.fail_with = deque(fail_with)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                    )
                    status = fake.fail_with.popleft() if fake.fail_with else 200
                if self.path != "/v1/chat/completions":
                    status = 404
                if status != 200:
                    payload: dict[str, Any] = {"error": {"message": f"fake status {status}"}}
                else:
                    content = fake.policy(body["messages"])
                    payload = {
                        "id": f"fake-{len(fake.requests)}",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

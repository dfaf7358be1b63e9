"""Client for the edmarl environment server, used like Queue Doctor's ``QueueDoctorEnv``.

Sync (HTTP by default; ``transport="ws"`` keeps one WebSocket open, which is faster)::

    import json
    from envs.server.client import Client

    with Client("http://127.0.0.1:7860").sync() as env:
        env.reset()
        env.call_tool("start_task", task_id="task_1_easy")
        while True:
            state = json.loads(env.call_tool("get_queue_state"))
            if state["done"] or not state["queue"]:
                break
            env.call_tool("serve_patient", patient_id=state["queue"][0]["patient_id"])
        print(json.loads(env.call_tool("finalize_episode"))["score"])

Async: ``async with Client(url) as env: await env.call_tool_json("list_tasks")``.

The multi-agent ``ed`` tools (server started with ``--rulesets classic,ed``) are called
the same way::

    with Client("http://127.0.0.1:7860").sync() as env:
        env.reset(task_id="mass_casualty", seed=42, ruleset="ed")
        env.call_tool("triage_patient", patient_id="P001", category=2)
        reply = env.step("end_step")          # reply["reward"]: the sub-step's team reward

``call_tool`` returns the tool's JSON as a string (as Queue Doctor's client did);
``call_tool_json`` the decoded value; ``step`` the whole reply (``result``, ``reward``,
``done``). A refused call raises :class:`ServerError`, a subclass of
``envs.tool_api.ToolError`` with the same ``code`` the in-process ``ToolSession`` uses
(plus ``unknown_tool``, ``bad_argument``, ``unknown_session``, ``session_limit`` …) and
the HTTP ``status``; the session stays usable. Network failures raise httpx's or
websockets' own exceptions.

A session is created by ``reset()`` (or on the first tool call) and deleted on exit if
this client created it; ``Client(url, session_id=...)`` attaches to an existing session
(e.g. one a crashed process left behind) and leaves it open on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from envs.tool_api import ToolError

Transport = Literal["http", "ws"]
DEFAULT_URL = "http://127.0.0.1:7860"


class ServerError(ToolError):
    """The server refused a request. ``status`` is the HTTP status (WebSocket errors carry
    the status the same request would have had over HTTP); ``payload`` the error JSON."""

    def __init__(self, status: int, code: str, message: str, payload: dict | None = None):
        super().__init__(code, message)
        self.status = status
        self.payload = payload or {"error": message, "code": code}

    def __str__(self) -> str:
        return f"[{self.status} {self.code}] {self.message}"


def _http_error(resp: httpx.Response) -> ServerError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return ServerError(resp.status_code, str(body["code"]), str(body.get("error")), body)
    return ServerError(resp.status_code, "http_error", resp.text[:500] or resp.reason_phrase)


def _ws_url(base_url: str, session_id: str | None) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/ws"
    query = f"session_id={quote(session_id)}" if session_id else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def _reset_fields(task_id: str | None, seed: int | None, ruleset: str | None) -> dict[str, Any]:
    fields = {"task_id": task_id, "seed": seed, "ruleset": ruleset}
    return {k: v for k, v in fields.items() if v is not None}


def _same(data: Any) -> Any:
    return data


@dataclass(frozen=True)
class _Request:
    """One API call, as both transports spell it; ``pick`` extracts the answer."""

    ws: tuple[str, dict[str, Any] | None]  # message type, data
    http: tuple[str, str, dict | None, dict | None]  # method, path, JSON body, params
    pick: Callable[[Any], Any] = _same
    sets_session: bool = False


class _Base:
    """What the sync and async clients share: every request is planned here (the
    ``_*_request`` methods) and only sent by the subclass's ``_send``."""

    def __init__(
        self,
        base_url: str,
        transport: Transport,
        timeout: float,
        session_id: str | None,
        token: str | None = None,
    ) -> None:
        if transport not in ("http", "ws"):
            raise ValueError(f"transport must be 'http' or 'ws', got {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.timeout = timeout
        self.session_id = session_id
        self._owned = session_id is None
        self._next_id = 0
        token = token if token is not None else os.environ.get("EDMARL_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        """Sent with every request (the server's bearer token, if it has one)."""

    # -- requests ------------------------------------------------------------------------
    def _reset_request(
        self, task_id: str | None, seed: int | None, ruleset: str | None
    ) -> _Request:
        fields = _reset_fields(task_id, seed, ruleset)
        body = dict(fields)
        if self.session_id is not None:
            body["session_id"] = self.session_id
        return _Request(("reset", fields), ("POST", "/reset", body, None), sets_session=True)

    def _step_request(self, name: str, arguments: dict[str, Any] | None) -> _Request:
        call = {"tool": name, "arguments": arguments or {}}
        body = {"session_id": self.session_id, **call}
        return _Request(("step", call), ("POST", "/step", body, None))

    def _state_request(self) -> _Request:
        params = {"session_id": self.session_id}
        return _Request(("state", None), ("GET", "/state", None, params))

    def _tools_request(self) -> _Request:
        return _Request(("tools", None), ("GET", "/tools", None, None), lambda d: d["tools"])

    def _answer(self, request: _Request, data: Any) -> Any:
        if request.sets_session:
            self.session_id = data["session_id"]
        return request.pick(data)

    @staticmethod
    def _http_result(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise _http_error(resp)
        return resp.json()

    def _ws_message(self, kind: str, data: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        return json.dumps({"type": kind, "id": self._next_id, "data": data or {}})

    def _ws_reply(self, raw: str | bytes) -> dict[str, Any]:
        reply = json.loads(raw)
        if reply.get("type") == "error":
            d = reply.get("data") or {}
            raise ServerError(int(d.get("status", 400)), str(d.get("code")), str(d.get("error")), d)
        if reply.get("id") != self._next_id:
            raise RuntimeError(f"out-of-order WebSocket reply {reply.get('id')} ≠ {self._next_id}")
        return reply["data"]


class SyncEnv(_Base):
    """Blocking client; use as a context manager (see the module docstring)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        transport: Transport = "http",
        timeout: float = 30.0,
        session_id: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(base_url, transport, timeout, session_id, token)
        self._http: httpx.Client | None = None
        self._ws: Any = None
        self._stack = contextlib.ExitStack()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> SyncEnv:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self.transport == "http":
            if self._http is None:
                self._http = httpx.Client(
                    base_url=self.base_url, timeout=self.timeout, headers=self.headers
                )
        elif self._ws is None:
            from websockets.sync.client import connect

            # Entered as a context manager: websockets >= 17 deprecates bare connect().
            self._stack = contextlib.ExitStack()
            self._ws = self._stack.enter_context(
                connect(
                    _ws_url(self.base_url, None if self._owned else self.session_id),
                    open_timeout=self.timeout,
                    max_size=None,
                    additional_headers=self.headers,
                )
            )
            if self._owned:  # the server made a session for this connection
                self.session_id = self._ws_call("state")["session_id"]

    def close(self) -> None:
        """Delete the session if this client created it, then disconnect."""
        try:
            if self._http is not None and self._owned and self.session_id is not None:
                try:
                    self._http.delete(f"/sessions/{quote(self.session_id)}")
                except httpx.HTTPError:
                    pass  # the server is gone or the session expired: nothing to free
        finally:
            if self._http is not None:
                self._http.close()
                self._http = None
            if self._ws is not None:
                self._ws = None
                self._stack.close()
            if self._owned:
                self.session_id = None

    # -- API -------------------------------------------------------------------------------
    def reset(
        self, task_id: str | None = None, seed: int | None = None, ruleset: str | None = None
    ) -> dict[str, Any]:
        """Create the session (first call) or reset it; with ``task_id`` start that task.
        Returns ``{"session_id", "observation", "reward", "done"}``."""
        return self._send(self._reset_request(task_id, seed, ruleset))

    def step(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool; the whole reply ``{"session_id", "tool", "result", "reward", "done"}``."""
        if self.session_id is None:
            self.reset()
        return self._send(self._step_request(name, arguments))

    def call_tool_json(self, name: str, **arguments: Any) -> Any:
        return self.step(name, arguments)["result"]

    def call_tool(self, name: str, **arguments: Any) -> str:
        """The tool's result as a JSON string, as Queue Doctor's client returned it."""
        return json.dumps(self.call_tool_json(name, **arguments))

    def state(self) -> dict[str, Any]:
        if self.session_id is None:
            self.reset()
        return self._send(self._state_request())

    def list_tools(self) -> list[dict[str, Any]]:
        return self._send(self._tools_request())

    # -- transport -------------------------------------------------------------------------
    def _send(self, request: _Request) -> Any:
        if self.transport == "ws":
            data = self._ws_call(*request.ws)
        else:
            data = self._http_call(*request.http)
        return self._answer(request, data)

    def _http_call(
        self, method: str, path: str, body: dict | None = None, params: dict | None = None
    ) -> Any:
        if self._http is None:
            self.open()
        assert self._http is not None
        return self._http_result(self._http.request(method, path, json=body, params=params))

    def _ws_call(self, kind: str, data: dict[str, Any] | None = None) -> Any:
        if self._ws is None:
            self.open()
        self._ws.send(self._ws_message(kind, data))
        return self._ws_reply(self._ws.recv(timeout=self.timeout))


class AsyncEnv(_Base):
    """The asyncio twin of :class:`SyncEnv` (same methods, awaited)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        transport: Transport = "http",
        timeout: float = 30.0,
        session_id: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(base_url, transport, timeout, session_id, token)
        self._http: httpx.AsyncClient | None = None
        self._ws: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AsyncEnv:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self.transport == "http":
            if self._http is None:
                self._http = httpx.AsyncClient(
                    base_url=self.base_url, timeout=self.timeout, headers=self.headers
                )
        elif self._ws is None:
            from websockets.asyncio.client import connect

            self._stack = contextlib.AsyncExitStack()
            self._ws = await self._stack.enter_async_context(
                connect(
                    _ws_url(self.base_url, None if self._owned else self.session_id),
                    open_timeout=self.timeout,
                    max_size=None,
                    additional_headers=self.headers,
                )
            )
            if self._owned:
                self.session_id = (await self._ws_call("state"))["session_id"]

    async def close(self) -> None:
        try:
            if self._http is not None and self._owned and self.session_id is not None:
                try:
                    await self._http.delete(f"/sessions/{quote(self.session_id)}")
                except httpx.HTTPError:
                    pass
        finally:
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            if self._ws is not None:
                self._ws = None
                await self._stack.aclose()
            if self._owned:
                self.session_id = None

    async def reset(
        self, task_id: str | None = None, seed: int | None = None, ruleset: str | None = None
    ) -> dict[str, Any]:
        return await self._send(self._reset_request(task_id, seed, ruleset))

    async def step(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.session_id is None:
            await self.reset()
        return await self._send(self._step_request(name, arguments))

    async def call_tool_json(self, name: str, **arguments: Any) -> Any:
        return (await self.step(name, arguments))["result"]

    async def call_tool(self, name: str, **arguments: Any) -> str:
        return json.dumps(await self.call_tool_json(name, **arguments))

    async def state(self) -> dict[str, Any]:
        if self.session_id is None:
            await self.reset()
        return await self._send(self._state_request())

    async def list_tools(self) -> list[dict[str, Any]]:
        return await self._send(self._tools_request())

    async def _send(self, request: _Request) -> Any:
        if self.transport == "ws":
            data = await self._ws_call(*request.ws)
        else:
            data = await self._http_call(*request.http)
        return self._answer(request, data)

    async def _http_call(
        self, method: str, path: str, body: dict | None = None, params: dict | None = None
    ) -> Any:
        if self._http is None:
            await self.open()
        assert self._http is not None
        resp = await self._http.request(method, path, json=body, params=params)
        return self._http_result(resp)

    async def _ws_call(self, kind: str, data: dict[str, Any] | None = None) -> Any:
        if self._ws is None:
            await self.open()
        await self._ws.send(self._ws_message(kind, data))
        return self._ws_reply(await asyncio.wait_for(self._ws.recv(), self.timeout))


class Client:
    """Entry point: ``Client(url).sync()`` for blocking use, ``async with Client(url)``
    for asyncio. ``transport``: ``"http"`` (default) or ``"ws"``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        transport: Transport = "http",
        timeout: float = 30.0,
        session_id: str | None = None,
        token: str | None = None,
    ) -> None:
        self.token = token
        """Bearer token (default: the EDMARL_TOKEN environment variable)."""
        self.base_url = base_url
        self.transport: Transport = transport
        self.timeout = timeout
        self.session_id = session_id
        self._async: AsyncEnv | None = None

    def sync(self) -> SyncEnv:
        return SyncEnv(self.base_url, self.transport, self.timeout, self.session_id, self.token)

    def aio(self) -> AsyncEnv:
        return AsyncEnv(self.base_url, self.transport, self.timeout, self.session_id, self.token)

    async def __aenter__(self) -> AsyncEnv:
        self._async = self.aio()
        return await self._async.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        if self._async is not None:
            await self._async.__aexit__(*exc)
            self._async = None


__all__ = ["AsyncEnv", "Client", "ServerError", "SyncEnv"]

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
from collections.abc import Generator
from dataclasses import KW_ONLY, dataclass, field
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


Plan = Generator["_Request", Any, Any]
"""An API call written once, for both clients: a generator that yields the requests to
send and is sent their answers. :class:`SyncEnv` and :class:`AsyncEnv` only differ in
how they send one (``_send``) and so in how they run a plan (``_run``)."""


@dataclass(frozen=True)
class _Request:
    """One API call, as both transports spell it."""

    ws: tuple[str, dict[str, Any] | None]  # message type, data
    http: tuple[str, str, dict | None, dict | None]  # method, path, JSON body, params


def _advance(plan: Plan, answer: Any) -> tuple[_Request | None, Any]:
    """Send ``answer`` into ``plan``: (its next request, None), or (None, its result)."""
    try:
        return plan.send(answer), None
    except StopIteration as done:
        return None, done.value


class _Base:
    """Everything the sync and async clients share: the API as plans (``_*_plan``), the
    wire formats and the connection settings; subclasses add only the I/O."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        transport: Transport = "http",
        timeout: float = 30.0,
        session_id: str | None = None,
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
        self._http = None  # opened on first use (or by open())
        self._ws: Any = None

    # -- the API, once ---------------------------------------------------------------------
    def _reset_plan(self, task_id: str | None, seed: int | None, ruleset: str | None) -> Plan:
        fields = {"task_id": task_id, "seed": seed, "ruleset": ruleset}
        fields = {k: v for k, v in fields.items() if v is not None}
        body = dict(fields)
        if self.session_id is not None:
            body["session_id"] = self.session_id
        data = yield _Request(("reset", fields), ("POST", "/reset", body, None))
        self.session_id = data["session_id"]
        return data

    def _step_plan(self, name: str, arguments: dict[str, Any] | None) -> Plan:
        if self.session_id is None:
            yield from self._reset_plan(None, None, None)
        call = {"tool": name, "arguments": arguments or {}}
        body = {"session_id": self.session_id, **call}
        return (yield _Request(("step", call), ("POST", "/step", body, None)))

    def _call_tool_plan(self, name: str, arguments: dict[str, Any], as_text: bool) -> Plan:
        result = (yield from self._step_plan(name, arguments))["result"]
        return json.dumps(result) if as_text else result

    def _state_plan(self) -> Plan:
        if self.session_id is None:
            yield from self._reset_plan(None, None, None)
        params = {"session_id": self.session_id}
        return (yield _Request(("state", None), ("GET", "/state", None, params)))

    def _list_tools_plan(self) -> Plan:
        return (yield _Request(("tools", None), ("GET", "/tools", None, None)))["tools"]

    def _adopt_plan(self) -> Plan:
        """A new WebSocket connection's session (the server makes one per connection)."""
        data = yield _Request(("state", None), ("GET", "/state", None, None))  # ws only
        self.session_id = data["session_id"]

    # -- connections -----------------------------------------------------------------------
    _http_type: type[httpx.Client] | type[httpx.AsyncClient]

    def _needs_ws(self) -> bool:
        """Open the HTTP client (no I/O yet), or say that a WebSocket must be connected."""
        if self.transport == "http":
            if self._http is None:
                self._http = self._http_type(
                    base_url=self.base_url, timeout=self.timeout, headers=self.headers
                )
            return False
        return self._ws is None

    def _ws_connect_args(self) -> tuple[str, dict[str, Any]]:
        url = _ws_url(self.base_url, None if self._owned else self.session_id)
        return url, {
            "open_timeout": self.timeout,
            "max_size": None,
            "additional_headers": self.headers,
        }

    def _delete_path(self) -> str | None:
        """The session to delete on close: this client's own, over an open HTTP client."""
        if self._http is None or not self._owned or self.session_id is None:
            return None
        return f"/sessions/{quote(self.session_id)}"

    def _detach(self) -> tuple[Any, Any]:
        """Forget the connections, returned for the caller to close, and an owned session."""
        http, stack = self._http, (self._stack if self._ws is not None else None)
        self._http = self._ws = None
        if self._owned:
            self.session_id = None
        return http, stack

    # -- wire formats ----------------------------------------------------------------------
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

    _http_type = httpx.Client
    _http: httpx.Client | None
    _stack: contextlib.ExitStack

    def __enter__(self) -> SyncEnv:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._needs_ws():
            from websockets.sync.client import connect

            url, options = self._ws_connect_args()
            # Entered as a context manager: websockets >= 17 deprecates bare connect().
            self._stack = contextlib.ExitStack()
            self._ws = self._stack.enter_context(connect(url, **options))
            if self._owned:  # the server made a session for this connection
                self._run(self._adopt_plan())

    def close(self) -> None:
        """Delete the session if this client created it, then disconnect."""
        try:
            if path := self._delete_path():
                with contextlib.suppress(httpx.HTTPError):  # server gone or session expired
                    self._http.delete(path)  # type: ignore[union-attr]
        finally:
            http, stack = self._detach()
            if http is not None:
                http.close()
            if stack is not None:
                stack.close()

    # -- API -------------------------------------------------------------------------------
    def reset(
        self, task_id: str | None = None, seed: int | None = None, ruleset: str | None = None
    ) -> dict[str, Any]:
        """Create the session (first call) or reset it; with ``task_id`` start that task.
        Returns ``{"session_id", "observation", "reward", "done"}``."""
        return self._run(self._reset_plan(task_id, seed, ruleset))

    def step(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool; the whole reply ``{"session_id", "tool", "result", "reward", "done"}``."""
        return self._run(self._step_plan(name, arguments))

    def call_tool_json(self, name: str, **arguments: Any) -> Any:
        """The tool's result, decoded."""
        return self._run(self._call_tool_plan(name, arguments, as_text=False))

    def call_tool(self, name: str, **arguments: Any) -> str:
        """The tool's result as a JSON string, as Queue Doctor's client returned it."""
        return self._run(self._call_tool_plan(name, arguments, as_text=True))

    def state(self) -> dict[str, Any]:
        """The session's info and ``get_current_state()``."""
        return self._run(self._state_plan())

    def list_tools(self) -> list[dict[str, Any]]:
        """The tool schemas."""
        return self._run(self._list_tools_plan())

    # -- I/O ---------------------------------------------------------------------------------
    def _run(self, plan: Plan) -> Any:
        request, answer = _advance(plan, None)
        while request is not None:
            request, answer = _advance(plan, self._send(request))
        return answer

    def _send(self, request: _Request) -> Any:
        if self.transport == "http":
            if self._http is None:
                self.open()
            assert self._http is not None
            method, path, body, params = request.http
            return self._http_result(self._http.request(method, path, json=body, params=params))
        if self._ws is None:
            self.open()
        self._ws.send(self._ws_message(*request.ws))
        return self._ws_reply(self._ws.recv(timeout=self.timeout))


class AsyncEnv(_Base):
    """The asyncio twin of :class:`SyncEnv` (same methods, awaited; same plans)."""

    _http_type = httpx.AsyncClient
    _http: httpx.AsyncClient | None
    _stack: contextlib.AsyncExitStack

    async def __aenter__(self) -> AsyncEnv:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._needs_ws():
            from websockets.asyncio.client import connect

            url, options = self._ws_connect_args()
            self._stack = contextlib.AsyncExitStack()
            self._ws = await self._stack.enter_async_context(connect(url, **options))
            if self._owned:
                await self._run(self._adopt_plan())

    async def close(self) -> None:
        """Delete the session if this client created it, then disconnect."""
        try:
            if path := self._delete_path():
                with contextlib.suppress(httpx.HTTPError):
                    await self._http.delete(path)  # type: ignore[union-attr]
        finally:
            http, stack = self._detach()
            if http is not None:
                await http.aclose()
            if stack is not None:
                await stack.aclose()

    # -- API (SyncEnv's, awaited) -------------------------------------------------------------
    async def reset(
        self, task_id: str | None = None, seed: int | None = None, ruleset: str | None = None
    ) -> dict[str, Any]:
        return await self._run(self._reset_plan(task_id, seed, ruleset))

    async def step(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._run(self._step_plan(name, arguments))

    async def call_tool_json(self, name: str, **arguments: Any) -> Any:
        return await self._run(self._call_tool_plan(name, arguments, as_text=False))

    async def call_tool(self, name: str, **arguments: Any) -> str:
        return await self._run(self._call_tool_plan(name, arguments, as_text=True))

    async def state(self) -> dict[str, Any]:
        return await self._run(self._state_plan())

    async def list_tools(self) -> list[dict[str, Any]]:
        return await self._run(self._list_tools_plan())

    # -- I/O ---------------------------------------------------------------------------------
    async def _run(self, plan: Plan) -> Any:
        request, answer = _advance(plan, None)
        while request is not None:
            request, answer = _advance(plan, await self._send(request))
        return answer

    async def _send(self, request: _Request) -> Any:
        if self.transport == "http":
            if self._http is None:
                await self.open()
            assert self._http is not None
            method, path, body, params = request.http
            resp = await self._http.request(method, path, json=body, params=params)
            return self._http_result(resp)
        if self._ws is None:
            await self.open()
        await self._ws.send(self._ws_message(*request.ws))
        return self._ws_reply(await asyncio.wait_for(self._ws.recv(), self.timeout))


@dataclass(eq=False)
class Client:
    """Entry point: ``Client(url).sync()`` for blocking use, ``async with Client(url)``
    for asyncio. ``transport``: ``"http"`` (default) or ``"ws"``."""

    base_url: str = DEFAULT_URL
    _: KW_ONLY
    transport: Transport = "http"
    timeout: float = 30.0
    session_id: str | None = None
    token: str | None = field(default=None, repr=False)
    """Bearer token (default: the EDMARL_TOKEN environment variable)."""
    _async: AsyncEnv | None = field(default=None, init=False, repr=False)

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

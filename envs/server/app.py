"""edmarl's environment server: the tool API over HTTP, WebSocket and MCP, with
stateful, isolated sessions.

Run::

    edmarl-server                          # 127.0.0.1:7860
    python -m envs.server.app --port 8000 --max-sessions 128 --idle-timeout 600
    python -m envs.server.app --rulesets classic   # only Queue Doctor's seven tools
    uvicorn envs.server.app:app            # default config (what openenv.yaml names)

Routes (full reference with examples: ``docs/server.md``):

* ``GET /health``; ``GET /tools`` (the tool schemas); ``GET /docs`` (Swagger UI).
* ``POST /reset`` creates a session (or resets ``session_id``), optionally starting a
  task; ``POST /step`` calls one tool on a session; ``GET /state?session_id=``;
  ``DELETE /sessions/{id}``.
* ``WS /ws``: the same over one connection (a session per connection, or attach to an
  HTTP session with ``?session_id=``).
* ``POST /mcp``: MCP (streamable HTTP transport, JSON responses): ``initialize``,
  ``tools/list``, ``tools/call``, ``ping``; ``DELETE /mcp`` ends the MCP session.

Why not openenv-core's ``create_app``: its HTTP ``/reset``, ``/step`` and ``/state``
build a fresh environment per request and close it afterwards (the bug this server
fixes), only WebSocket/MCP sessions are stateful, and it pulls in gradio, pandas,
openai and huggingface_hub. This module keeps its route names and accepts its action
shape (``{"action": {"type": "call_tool", "tool_name": ..., "arguments": ...}}``).

The server only translates: tools are looked up in a :class:`ToolRegistry` and run on a
per-session object (``envs.tool_api.ToolSession``; with ``ed`` enabled
``envs.ed_tool_api.MultiRulesetSession``, whose ``start_task(ruleset=...)`` picks the
classic or the three-role ``ed`` session); no engine logic lives here. Tool
calls are short and CPU-bound, so they run inline on the event loop (a thread pool would
add latency and, under the GIL, no throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from envs.ed_tool_api import ED_WORKFLOW, MultiRulesetSession
from envs.rulesets import RULESETS
from envs.server.console import mount_console
from envs.server.security import (
    LOOPBACK_HOSTS,
    TOKEN_ENV,
    SecurityMiddleware,
    SecurityPolicy,
    clip,
    is_loopback,
)
from envs.server.sessions import LOCAL_CLIENT, SessionConfig, SessionStore, UnknownSessionError
from envs.server.tools import (
    MAX_STRING_CHARS,
    ApiError,
    ArgumentError,
    ToolRegistry,
    UnknownToolError,
    registry_for,
)
from envs.tasks import TASKS
from envs.tool_api import WORKFLOW, ToolError, ToolSession

log = logging.getLogger("edmarl.server")

SERVER_NAME = "edmarl"
SERVER_VERSION = "0.1.0"
MCP_PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")
SESSION_ID_CHARS = 64
"""Longest session id accepted in a request (ours are 32 hex characters)."""
SERVABLE_RULESETS = (*RULESETS, "ed")
"""Rulesets a server can enable; ``classic`` is always on, ``ed`` is opt-in."""


@dataclass(frozen=True)
class ServerConfig:
    host: str | None = "127.0.0.1"
    """Bind address; None when the ASGI server picks it (``uvicorn envs.server.app:app``):
    then requests reaching a non-loopback address need the token."""
    port: int = 7860
    max_sessions: int = 64
    idle_timeout_s: float = 900.0
    reap_interval_s: float | None = None
    """How often expired sessions are dropped; default min(30 s, idle_timeout_s / 4)."""
    max_body_bytes: int = 1 << 20
    log_level: str = "info"
    allowed_hosts: tuple[str, ...] | None = None
    """Accepted Host headers. Default: loopback names without a token (guards against
    DNS rebinding from a browser), any host with one."""
    token: str | None = field(default=None, repr=False)
    """Bearer token every route but /health requires; needed to bind beyond loopback."""
    allowed_origins: tuple[str, ...] = ()
    """Cross-origin pages (``scheme://host:port``) allowed to call; same-origin always is."""
    max_sessions_per_client: int | None = None
    """Sessions one non-loopback client address may hold (default max_sessions // 4)."""
    rulesets: tuple[str, ...] = ("classic", "ed")
    """Enabled rulesets: ``classic`` (Queue Doctor's seven tools) and ``ed`` (the
    multi-agent tools, ``envs.server.tools.ED_TOOLS``, and ``start_task(ruleset="ed")``);
    ``("classic",)`` serves exactly Queue Doctor's tool set."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        unknown = [r for r in self.rulesets if r not in SERVABLE_RULESETS]
        if unknown or "classic" not in self.rulesets:
            raise ValueError(
                f"rulesets must include classic and be among {', '.join(SERVABLE_RULESETS)}; "
                f"got {', '.join(self.rulesets) or 'none'}"
            )
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        if self.token is not None and (len(self.token) < 16 or not self.token.isprintable()):
            raise ValueError("the token must be at least 16 printable characters")
        if self.host is not None and not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"binding {self.host} exposes the server beyond this machine: set a bearer "
                f"token (--token, or the {TOKEN_ENV} environment variable) or bind 127.0.0.1"
            )
        self.session_config()  # validates the session limits

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        """The config of the module-level ``app`` (``uvicorn envs.server.app:app``): uvicorn
        picks the address (``host`` None), so the same guards as ``edmarl-server`` hold:
        loopback Host names only and no requests from beyond loopback unless
        ``EDMARL_TOKEN`` is set. ``EDMARL_ALLOWED_HOSTS``, ``EDMARL_ALLOWED_ORIGINS``
        (comma-separated), ``EDMARL_MAX_SESSIONS``, ``EDMARL_MAX_SESSIONS_PER_CLIENT``,
        ``EDMARL_IDLE_TIMEOUT`` and ``EDMARL_RULESETS`` (e.g. ``classic,ed``) set the rest.
        A bad value is a ValueError naming the variable."""
        env = os.environ if env is None else env

        def number(name: str, kind: type, default: Any) -> Any:
            raw = env.get(name)
            try:
                return default if raw is None else kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected {kind.__name__}") from None

        hosts = env.get("EDMARL_ALLOWED_HOSTS")
        return cls(
            host=None,
            max_sessions=number("EDMARL_MAX_SESSIONS", int, cls.max_sessions),
            max_sessions_per_client=number("EDMARL_MAX_SESSIONS_PER_CLIENT", int, None),
            idle_timeout_s=number("EDMARL_IDLE_TIMEOUT", float, cls.idle_timeout_s),
            allowed_hosts=None if hosts is None else _name_list(hosts),
            allowed_origins=_name_list(env.get("EDMARL_ALLOWED_ORIGINS", "")),
            token=env.get(TOKEN_ENV) or None,
            rulesets=_ruleset_list(env.get("EDMARL_RULESETS", "classic,ed")),
        )

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            max_sessions=self.max_sessions,
            idle_timeout_s=self.idle_timeout_s,
            max_per_client=self.max_sessions_per_client,
        )

    def security_policy(self) -> SecurityPolicy:
        return SecurityPolicy(
            token=self.token,
            allowed_hosts=self.allowed_hosts,
            allowed_origins=self.allowed_origins,
            max_bytes=self.max_body_bytes,
            require_token_off_loopback=self.host is None,
        )

    def reap_every(self) -> float:
        if self.reap_interval_s is not None:
            return self.reap_interval_s
        return max(0.05, min(30.0, self.idle_timeout_s / 4))

    def host_allowlist(self) -> tuple[str, ...]:
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        return ("*",) if self.token else LOOPBACK_HOSTS


def _ruleset_list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in text.split(",") if h.strip())


def client_key(client: tuple[str, int] | Any) -> str:
    """The per-client quota key of a connection: its address, or LOCAL_CLIENT for
    loopback and in-process callers (this machine's own users are not limited)."""
    host = client[0] if client else None
    return LOCAL_CLIENT if host is None or is_loopback(host) else str(host)


# -- the transport-independent core -------------------------------------------------------


def _tool_error(e: ToolError) -> ApiError:
    # bad_argument is the caller's input (400); the others are "not now" (409 Conflict).
    return ApiError(400 if e.code == "bad_argument" else 409, e.code, e.message)


class EnvService:
    """reset / step / state / close on top of a session store and a tool registry.

    Every transport calls these; they return JSON-ready dicts or raise :class:`ApiError`.
    """

    def __init__(
        self, store: SessionStore, registry: ToolRegistry, workflow: str = WORKFLOW
    ) -> None:
        self.store = store
        self.registry = registry
        self.workflow = workflow
        """The ``workflow`` of a 'ready' reset and the MCP ``instructions``."""

    def reset(
        self,
        session_id: str | None,
        start: dict[str, Any] | None,
        transport: str = "http",
        client: str = LOCAL_CLIENT,
    ) -> dict[str, Any]:
        """New session (``session_id`` None) or a fresh episode object for an existing one;
        with ``start`` (start_task's arguments) the task is started too. On an error an
        existing session keeps its old episode and a new one is not created."""
        if session_id is None:
            session = self.store.create(transport, client)
            try:
                with self.store.use(session.id):
                    observation = self._observe(session.obj, start)
            except BaseException:
                self.store.close(session.id)  # nobody learns the id: it would leak a slot
                raise
        else:
            self.store.get(session_id)  # unknown/expired: fail before doing any work
            fresh = self.store.factory()
            observation = self._observe(fresh, start)
            session = self.store.replace(session_id, fresh)
        return {"session_id": session.id, "observation": observation, "reward": None, "done": False}

    def _observe(self, obj: Any, start: dict[str, Any] | None) -> Any:
        if start is not None:
            return self._invoke(obj, "start_task", start)
        return {
            "status": "ready",
            "available_tools": list(self.registry.names()),
            "workflow": self.workflow,
        }

    def step(self, session_id: Any, tool: Any, arguments: Any) -> dict[str, Any]:
        result = self._call(session_id, tool, arguments)
        reward = done = None
        if isinstance(result, dict):
            reward = result.get("step_reward")
            done = result.get("done")
        return {
            "session_id": session_id,
            "tool": tool,
            "result": result,
            "reward": reward,
            "done": done,
        }

    def state(self, session_id: Any) -> dict[str, Any]:
        with self.store.use(session_id) as session:
            state = None
            if "get_current_state" in self.registry:
                state = self._invoke(session.obj, "get_current_state", None)
            info = session.info(self.store.now())
        return {**info, "state": state}

    def close(self, session_id: str) -> dict[str, Any]:
        if not self.store.close(session_id):
            self.store.get(session_id)  # raises the precise unknown/expired error
        return {"session_id": session_id, "closed": True}

    def _call(self, session_id: Any, tool: Any, arguments: Any) -> Any:
        with self.store.use(session_id) as session:
            return self._invoke(session.obj, tool, arguments)

    def _invoke(self, obj: Any, tool: str, arguments: Any) -> Any:
        try:
            return self.registry.call(obj, tool, arguments)
        except ToolError as e:
            raise _tool_error(e) from None


# -- HTTP request models (also documented in /docs) ---------------------------------------


class ResetRequest(BaseModel):
    """Create a session (no ``session_id``) or reset one; optionally start a task."""

    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr | None = Field(
        None, max_length=SESSION_ID_CHARS, description="Reset this session; omit to create."
    )
    task_id: StrictStr | None = Field(
        None, max_length=MAX_STRING_CHARS, description="Start this task right away."
    )
    seed: StrictInt | None = Field(
        None, description="Episode seed (with task_id): a non-negative integer."
    )
    ruleset: StrictStr | None = Field(
        None, max_length=MAX_STRING_CHARS, description="Ruleset (with task_id)."
    )


class CallToolAction(BaseModel):
    """OpenEnv's ``CallToolAction`` shape."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["call_tool"] = "call_tool"
    tool_name: StrictStr = Field(max_length=MAX_STRING_CHARS)
    arguments: dict[str, Any] = Field(default_factory=dict)


class StepRequest(BaseModel):
    """One tool call: ``{"session_id", "tool", "arguments"}`` or OpenEnv's ``action``."""

    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr = Field(max_length=SESSION_ID_CHARS)
    tool: StrictStr | None = Field(None, max_length=MAX_STRING_CHARS)
    arguments: dict[str, Any] | None = None
    action: CallToolAction | None = None

    def tool_call(self) -> tuple[str, dict[str, Any] | None]:
        if (self.tool is None) == (self.action is None):
            raise ApiError(
                422,
                "invalid_request",
                "give exactly one of 'tool' (with 'arguments') or 'action' "
                '({"type": "call_tool", "tool_name": ..., "arguments": {...}})',
            )
        if self.action is not None:
            if self.arguments is not None:
                raise ApiError(
                    422, "invalid_request", "'arguments' go inside 'action' in the OpenEnv shape"
                )
            return self.action.tool_name, self.action.arguments
        assert self.tool is not None
        return self.tool, self.arguments


class StepReply(BaseModel):
    """A tool call's reply; ``reward``/``done`` are the tool's ``step_reward``/``done``."""

    session_id: str
    tool: str
    result: Any = Field(description="The tool's JSON, exactly as ToolSession returns it.")
    reward: float | None = None
    done: bool | None = None


class ResetReply(BaseModel):
    session_id: str
    observation: Any = Field(description="start_task's result, or a 'ready' status.")
    reward: float | None = None
    done: bool = False


class StateReply(BaseModel):
    session_id: str
    transport: str
    created_at: float
    idle_s: float
    calls: int
    state: Any = Field(description="get_current_state()")


class ErrorReply(BaseModel):
    error: str = Field(description="What went wrong and how to fix it.")
    code: str = Field(description="Machine-readable: unknown_tool, bad_argument, ...")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorReply, "description": "malformed JSON or a refused argument"},
    404: {"model": ErrorReply, "description": "unknown tool or session"},
    409: {"model": ErrorReply, "description": "tool refused now (no task, episode over)"},
    422: {"model": ErrorReply, "description": "missing, extra or mistyped field/argument"},
    503: {"model": ErrorReply, "description": "session limit reached"},
}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # json.dumps directly: the payloads are plain dicts, FastAPI's encoder would only add cost.
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            pos = err.get("loc", (None, None))[-1]
            return (
                400,
                "malformed_json",
                f"malformed JSON body: {ctx.get('error', 'invalid')}"
                + (f" at position {pos}" if isinstance(pos, int) else ""),
            )
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ())]
        where, path = (loc[0], loc[1:]) if loc else ("body", [])
        if where == "body":
            name = ".".join(path) or "request body"
        else:
            name = f"{'.'.join(path)} ({where} parameter)"
        msg, kind = err.get("msg", "invalid"), err.get("type")
        if kind == "extra_forbidden":
            msg = "unexpected field"
        elif name == "request body" and kind == "missing":
            return 422, "invalid_request", "a JSON object request body is required"
        elif name == "request body" and kind in ("model_attributes_type", "dict_type"):
            return 422, "invalid_request", "the request body must be a JSON object"
        parts.append(f"{name}: {msg}")
    return 422, "invalid_request", "; ".join(parts) or "invalid request"


# -- the app ------------------------------------------------------------------------------


def create_app(
    config: ServerConfig | None = None,
    registry: ToolRegistry | None = None,
    session_factory: Callable[[], Any] | None = None,
) -> FastAPI:
    """The ASGI app. ``registry`` defaults to the tools of ``config.rulesets``
    (:data:`DEFAULT_REGISTRY`, the seven Queue Doctor tools; with ``ed`` also the ``ed``
    tools); ``session_factory`` builds one session object per client session (default
    ``ToolSession``, with ``ed`` enabled ``MultiRulesetSession``)."""
    config = config or ServerConfig()
    ed = "ed" in config.rulesets
    registry = registry_for(config.rulesets) if registry is None else registry
    if session_factory is None:
        session_factory = MultiRulesetSession if ed else ToolSession
    store = SessionStore(session_factory, config.session_config())
    service = EnvService(store, registry, f"{WORKFLOW}\n\n{ED_WORKFLOW}" if ed else WORKFLOW)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async def reaper() -> None:
            while True:
                await asyncio.sleep(config.reap_every())
                gone = store.reap()
                if gone:
                    log.info("expired %d idle session(s)", len(gone))

        task = asyncio.create_task(reaper())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="edmarl environment server",
        version=SERVER_VERSION,
        description=(
            "Queue Doctor's tools and the multi-agent ED tools (ruleset ed) over HTTP, "
            "WebSocket (/ws) and MCP (/mcp), with stateful isolated sessions. "
            'Errors are JSON: {"error": message, "code": code, ...}.'
        ),
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.service = service
    app.state.config = config
    app.add_middleware(SecurityMiddleware, policy=config.security_policy())

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _json(exc.as_dict(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, code, message = _validation_message(exc)
        return _json({"error": message, "code": code}, status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {clip(request.url.path)}; see /docs"
        return _json({"error": message, "code": code}, exc.status_code, exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json(
            {"error": f"internal server error ({type(exc).__name__})", "code": "internal_error"},
            500,
        )

    # -- HTTP -----------------------------------------------------------------------------
    @app.get("/health", tags=["server"])
    async def health() -> Response:
        return _json({"status": "healthy", "tools": len(registry), **store.stats()})

    @app.get("/tools", tags=["server"])
    async def tools() -> Response:
        return _json({"tools": registry.describe()})

    @app.get("/metadata", tags=["server"])
    async def metadata() -> Response:
        return _json(
            {
                "name": SERVER_NAME,
                "description": "Emergency-department triage environments (Queue Doctor's "
                "tasks and tools); stateful sessions over HTTP, WebSocket and MCP.",
                "version": SERVER_VERSION,
                "tools": list(registry.names()),
                "tasks": list(TASKS),
                "rulesets": list(config.rulesets),
            }
        )

    @app.get("/schema", tags=["server"])
    async def schema() -> Response:
        return _json(
            {
                "action": StepRequest.model_json_schema(),
                "observation": StepReply.model_json_schema(),
                "state": StateReply.model_json_schema(),
                "tools": registry.describe(),
            }
        )

    @app.post("/reset", tags=["environment"], response_model=ResetReply, responses=_ERRORS)
    async def reset(request: Request, req: ResetRequest | None = None) -> Response:
        req = req or ResetRequest()
        start = _start_args({"task_id": req.task_id, "seed": req.seed, "ruleset": req.ruleset})
        return _json(service.reset(req.session_id, start, "http", client_key(request.client)))

    @app.post("/step", tags=["environment"], response_model=StepReply, responses=_ERRORS)
    async def step(req: StepRequest) -> Response:
        tool, arguments = req.tool_call()
        payload = service.step(req.session_id, tool, arguments)
        # OpenEnv's action shape gets OpenEnv's observation shape back; errors stay 4xx.
        return _json(_openenv_step(payload) if req.action is not None else payload)

    @app.get("/state", tags=["environment"], response_model=StateReply, responses=_ERRORS)
    async def state(
        session_id: str = Query(
            ..., max_length=SESSION_ID_CHARS, description="Session id from /reset"
        ),
    ) -> Response:
        return _json(service.state(session_id))

    @app.delete("/sessions/{session_id}", tags=["environment"])
    async def close_session(session_id: str) -> Response:
        return _json(service.close(session_id))

    # -- WebSocket ------------------------------------------------------------------------
    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session_id: str | None = None) -> None:
        await websocket.accept()
        owned = session_id is None
        try:
            sid = (
                store.create("ws", client_key(websocket.client)).id
                if owned
                else store.get(session_id).id
            )
        except ApiError as e:
            await websocket.send_text(_ws_error(e, None))
            await websocket.close(code=1013 if e.status == 503 else 1008)
            return
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = (message.get("bytes") or b"").decode("utf-8", "replace")
                if len(raw) > config.max_body_bytes:  # uvicorn's own cap may be higher
                    err = ApiError(
                        413, "body_too_large", f"message over {config.max_body_bytes} bytes"
                    )
                    reply, close = _ws_error(err, None), False
                else:
                    reply, close = _ws_dispatch(service, sid, raw)
                await websocket.send_text(reply)
                if close:
                    await websocket.close()
                    break
        except Exception as e:  # a vanished client must never take the server down
            log.debug("websocket for session %s ended: %r", sid, e)
        finally:
            if owned:
                store.close(sid)

    # -- MCP (streamable HTTP, JSON responses only) ---------------------------------------
    @app.post("/mcp", tags=["mcp"])
    async def mcp(request: Request) -> Response:
        return _mcp_post(
            service,
            await request.body(),
            request.headers.get("mcp-session-id"),
            client_key(request.client),
        )

    @app.delete("/mcp", tags=["mcp"])
    async def mcp_delete(request: Request) -> Response:
        sid = request.headers.get("mcp-session-id")
        if not sid:
            raise ApiError(400, "invalid_request", "missing Mcp-Session-Id header")
        service.close(sid)
        return Response(status_code=204)

    @app.get("/mcp", tags=["mcp"])
    async def mcp_get() -> Response:
        # No server-initiated messages: the spec allows 405 instead of an SSE stream.
        return _json(
            {
                "error": "this MCP server sends no server-initiated stream; POST requests",
                "code": "method_not_allowed",
            },
            405,
            {"Allow": "POST, DELETE"},
        )

    mount_console(app, service)  # the web console at / (envs/server/console.py)
    return app


# -- WebSocket protocol -------------------------------------------------------------------


def _ws_error(e: ApiError, msg_id: Any) -> str:
    data = {**e.as_dict(), "message": e.message, "status": e.status}  # message: OpenEnv's key
    return _dumps({"type": "error", "id": msg_id, "data": data})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def _ws_dispatch(service: EnvService, sid: str, raw: str) -> tuple[str, bool]:
    """One WebSocket message → (reply, close?). Errors are replies, never disconnects."""
    msg_id = None
    try:
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ApiError(400, "malformed_json", f"malformed JSON message: {e}") from None
        if not isinstance(msg, dict):
            raise ApiError(400, "invalid_request", "a message must be a JSON object")
        msg_id = msg.get("id")
        kind = msg.get("type")
        data = msg.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "'data' must be a JSON object")
        if kind == "step" and data.get("type") == "list_tools":  # OpenEnv's ListToolsAction
            obs = {"tools": service.registry.describe(), "done": False, "reward": None}
            reply = {"observation": obs, "reward": None, "done": False}
            return _dumps({"type": "observation", "id": msg_id, "data": reply}), False
        if kind == "step":
            tool, arguments, openenv = _ws_tool_call(data)
            if openenv:
                reply = _openenv_ws_step(service, sid, tool, arguments)
            else:
                reply = service.step(sid, tool, arguments)
            return _dumps({"type": "observation", "id": msg_id, "data": reply}), False
        if kind == "reset":
            data = {k: v for k, v in data.items() if k != "episode_id"}  # OpenEnv's; unused
            extra = sorted(set(data) - {"task_id", "seed", "ruleset"})
            if extra:
                raise ApiError(422, "invalid_request", f"reset: unexpected field(s) {extra}")
            start = _start_args(data)
            return _dumps(
                {"type": "observation", "id": msg_id, "data": service.reset(sid, start, "ws")}
            ), False
        if kind == "state":
            return _dumps({"type": "state", "id": msg_id, "data": service.state(sid)}), False
        if kind in ("tools", "list_tools"):
            tools = {"tools": service.registry.describe()}
            return _dumps({"type": "tools", "id": msg_id, "data": tools}), False
        if kind == "close":
            return _dumps({"type": "closed", "id": msg_id, "data": {"session_id": sid}}), True
        raise ApiError(
            400,
            "invalid_request",
            f"unknown message type {clip(kind)}; use step, reset, state, tools or close",
        )
    except ApiError as e:
        return _ws_error(e, msg_id), False
    except Exception as e:  # an engine bug: report it, keep the connection
        log.exception("internal error on websocket session %s", sid)
        err = ApiError(500, "internal_error", f"internal server error ({type(e).__name__})")
        return _ws_error(err, msg_id), False


def _start_args(fields: dict[str, Any]) -> dict[str, Any] | None:
    """start_task arguments from reset fields (None values dropped), or None."""
    start = {k: v for k, v in fields.items() if v is not None}
    if start and "task_id" not in start:
        raise ApiError(422, "invalid_request", "seed and ruleset need task_id")
    return start or None


def _ws_tool_call(data: dict[str, Any]) -> tuple[Any, Any, bool]:
    """(tool, arguments, OpenEnv shape?) from a step message's data."""
    if "tool" in data:  # edmarl shape
        extra = sorted(set(data) - {"tool", "arguments"})
        if extra:
            raise ApiError(422, "invalid_request", f"step: unexpected field(s) {extra}")
        return data["tool"], data.get("arguments"), False
    if "tool_name" in data:  # OpenEnv CallToolAction
        return data["tool_name"], data.get("arguments"), True
    raise ApiError(422, "invalid_request", 'step needs data {"tool": name, "arguments": {...}}')


def _openenv_step(payload: dict[str, Any]) -> dict[str, Any]:
    """A step reply in OpenEnv's shape (``CallToolObservation``), for callers that sent
    OpenEnv's ``CallToolAction``: the result is an MCP ``CallToolResult`` whose ``data``
    is the tool's JSON text, which OpenEnv's ``MCPToolClient.call_tool`` returns."""
    value = payload["result"]
    structured = value if isinstance(value, dict) else {"result": value}
    return _openenv_observation(
        payload["session_id"],
        payload["tool"],
        _tool_result(_dumps(value), structured, False),
        None,
        payload["reward"],
        bool(payload["done"]),
    )


def _openenv_observation(
    sid: str, tool: Any, result: Any, error: dict | None, reward: Any, done: bool
) -> dict[str, Any]:
    obs = {
        "tool_name": tool,
        "result": result,
        "error": error,
        "done": done,
        "reward": reward,
        "metadata": {},
    }
    return {"session_id": sid, "observation": obs, "reward": reward, "done": done}


def _openenv_ws_step(service: EnvService, sid: str, tool: Any, arguments: Any) -> dict[str, Any]:
    """OpenEnv semantics over the WebSocket: framework errors in ``observation.error``,
    the tool's own refusals in ``result`` (``isError``), as OpenEnv's MCP servers do."""
    try:
        return _openenv_step(service.step(sid, tool, arguments))
    except UnknownSessionError:
        raise
    except (UnknownToolError, ArgumentError) as e:
        kind = "tool_not_found" if isinstance(e, UnknownToolError) else "invalid_args"
        err = {"error_type": kind, "message": e.message}
        return _openenv_observation(sid, tool, None, err, None, False)
    except ApiError as e:
        result = _tool_result(_dumps(e.as_dict()), None, True)
        return _openenv_observation(sid, tool, result, None, None, False)


# -- MCP JSON-RPC -------------------------------------------------------------------------

_PARSE_ERROR, _INVALID_REQUEST, _METHOD_NOT_FOUND, _INVALID_PARAMS = -32700, -32600, -32601, -32602
_SESSION_ERROR = -32001


def _rpc_error(msg_id: Any, code: int, message: str, status: int = 200, data: Any = None):
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return _json({"jsonrpc": "2.0", "id": msg_id, "error": err}, status)


def _rpc_result(msg_id: Any, result: Any, headers: dict[str, str] | None = None) -> Response:
    return _json({"jsonrpc": "2.0", "id": msg_id, "result": result}, 200, headers)


def _tool_result(text: str, structured: Any, is_error: bool) -> dict[str, Any]:
    """MCP ``CallToolResult``. ``data`` (the JSON text) is what OpenEnv's ``MCPToolClient``
    returns from ``call_tool``: Queue Doctor's tools returned exactly that string."""
    out: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured is not None:
        out["structuredContent"] = structured
    out["data"] = text
    return out


def _mcp_post(
    service: EnvService, body: bytes, header_sid: str | None, client: str = LOCAL_CLIENT
) -> Response:
    """One JSON-RPC message. Protocol-level errors are JSON-RPC error objects with HTTP 200
    (as OpenEnv's /mcp does); HTTP statuses signal session problems, as MCP's streamable
    HTTP transport says: 400 without a session, 404 for an unknown or expired one."""
    try:
        msg = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return _rpc_error(None, _PARSE_ERROR, f"Parse error: {e}")
    if isinstance(msg, list):
        return _rpc_error(None, _INVALID_REQUEST, "JSON-RPC batches are not supported")
    if (
        not isinstance(msg, dict)
        or msg.get("jsonrpc") != "2.0"
        or not isinstance(msg.get("method"), str)
    ):
        return _rpc_error(
            msg.get("id") if isinstance(msg, dict) else None,
            _INVALID_REQUEST,
            'Invalid Request: need {"jsonrpc": "2.0", "method": ..., "id": ...}',
        )
    if "id" not in msg:  # a notification (e.g. notifications/initialized): no reply
        return Response(status_code=202)
    msg_id, method = msg["id"], msg["method"]
    params = msg.get("params") or {}
    if not isinstance(params, dict):
        return _rpc_error(msg_id, _INVALID_PARAMS, "params must be an object")
    sid = header_sid or params.get("session_id")  # MCP header, or OpenEnv's params field

    if method in ("initialize", "openenv/session/create"):
        try:
            session = service.store.create("mcp", client)
        except ApiError as e:
            return _rpc_error(msg_id, _SESSION_ERROR, e.message, e.status, e.as_dict())
        if method == "openenv/session/create":
            return _rpc_result(msg_id, {"session_id": session.id})
        asked = params.get("protocolVersion")
        version = asked if asked in MCP_PROTOCOL_VERSIONS else MCP_PROTOCOL_VERSIONS[0]
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
            "instructions": service.workflow,
        }
        return _rpc_result(msg_id, result, {"Mcp-Session-Id": session.id})
    if method == "ping":
        return _rpc_result(msg_id, {})
    if method == "tools/list":
        return _rpc_result(msg_id, {"tools": service.registry.describe()})
    if method not in ("tools/call", "openenv/session/close"):
        return _rpc_error(msg_id, _METHOD_NOT_FOUND, f"Method not found: {clip(method)}")
    if not isinstance(sid, str) or not sid:
        return _rpc_error(
            msg_id, _INVALID_REQUEST, "missing Mcp-Session-Id header; call initialize first", 400
        )
    try:
        if method == "openenv/session/close":
            return _rpc_result(msg_id, service.close(sid))
        out = service.step(sid, params.get("name"), params.get("arguments"))
    except UnknownSessionError as e:  # MCP: a 404 tells the client to re-initialize
        return _rpc_error(msg_id, _SESSION_ERROR, e.message, 404, e.as_dict())
    except (UnknownToolError, ArgumentError) as e:
        return _rpc_error(msg_id, _INVALID_PARAMS, e.message, 200, e.as_dict())
    except ApiError as e:  # the tool ran and refused: an MCP tool error, shown to the model
        return _rpc_result(msg_id, _tool_result(_dumps(e.as_dict()), None, True))
    value = out["result"]
    structured = value if isinstance(value, dict) else {"result": value}
    return _rpc_result(msg_id, _tool_result(_dumps(value), structured, False))


# -- entry point --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(
        prog="edmarl-server",
        description="edmarl environment server (HTTP /reset /step /state, WS /ws, MCP /mcp).",
    )
    d = ServerConfig()
    p.add_argument(
        "--host",
        default=d.host,
        help="interface to bind (default %(default)s; 0.0.0.0 exposes it and needs a token)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token every route but /health requires (default: ${TOKEN_ENV}; prefer "
        "the variable: other users can read command lines)",
    )
    p.add_argument(
        "--allowed-hosts",
        default=None,
        help="comma-separated Host names to answer (default: loopback names without a "
        "token, any with one)",
    )
    p.add_argument(
        "--allowed-origins",
        default="",
        help="comma-separated origins (https://app.example) whose pages may call the "
        "server; same-origin pages always may",
    )
    p.add_argument("--port", type=int, default=d.port, help="default %(default)s")
    p.add_argument(
        "--max-sessions",
        type=int,
        default=d.max_sessions,
        help="cap on concurrent sessions (default %(default)s)",
    )
    p.add_argument(
        "--max-sessions-per-client",
        type=int,
        default=None,
        help="sessions one non-loopback client address may hold (default max-sessions / 4)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=d.idle_timeout_s,
        help="seconds before an unused session expires (default %(default)s)",
    )
    p.add_argument(
        "--log-level",
        default=d.log_level,
        choices=["critical", "error", "warning", "info", "debug"],
    )
    p.add_argument(
        "--rulesets",
        default="classic,ed",
        help="comma-separated rulesets to serve: classic (always) and ed, the multi-agent "
        "ED tools (default %(default)s)",
    )
    a = p.parse_args(argv)
    try:
        return ServerConfig(
            host=a.host,
            port=a.port,
            max_sessions=a.max_sessions,
            max_sessions_per_client=a.max_sessions_per_client,
            idle_timeout_s=a.idle_timeout,
            log_level=a.log_level,
            rulesets=_ruleset_list(a.rulesets),
            token=a.token,
            allowed_hosts=None if a.allowed_hosts is None else _name_list(a.allowed_hosts),
            allowed_origins=_name_list(a.allowed_origins),
        )
    except ValueError as e:
        p.error(str(e))
        raise  # unreachable: p.error exits


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    app = create_app(config)
    import uvicorn

    logging.basicConfig(
        level=config.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    print(
        f"edmarl server on http://{config.host}:{config.port} "
        f"(max {config.max_sessions} sessions, idle timeout {config.idle_timeout_s:g} s, "
        f"rulesets {', '.join(config.rulesets)}, "
        f"{'bearer token required' if config.token else 'no token: loopback only'})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        ws_max_size=config.max_body_bytes,
        timeout_graceful_shutdown=3,
    )
    return 0


def _module_app() -> FastAPI:
    try:
        return create_app(ServerConfig.from_env())
    except ValueError as e:  # a bad EDMARL_* variable: one line, not a traceback
        raise SystemExit(f"edmarl server: {e}") from None


app = _module_app()
"""The app ``uvicorn envs.server.app:app`` and ``openenv.yaml`` serve (see ``from_env``)."""

if __name__ == "__main__":
    raise SystemExit(main())

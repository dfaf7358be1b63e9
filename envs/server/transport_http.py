"""The HTTP transport: ``GET /health``, ``/tools``, ``/metadata``, ``/schema``;
``POST /reset`` (create a session, or reset ``session_id``, optionally starting a task);
``POST /step`` (one tool call); ``GET /state?session_id=``; ``DELETE /sessions/{id}``;
and the JSON error handlers every route shares (``{"error": message, "code": code}``).

The request models are documented in ``/docs``. ``/step`` also accepts OpenEnv's action
shape (``{"action": {"type": "call_tool", "tool_name": ..., "arguments": ...}}``) and
answers it in OpenEnv's observation shape.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from envs.server.security import clip
from envs.server.service import (
    SERVER_NAME,
    SERVER_VERSION,
    SESSION_ID_CHARS,
    EnvService,
    client_key,
    log,
    start_args,
)
from envs.server.shapes import json_response, openenv_step
from envs.server.tools import MAX_STRING_CHARS, ApiError
from envs.tasks import TASKS


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


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorReply, "description": "malformed JSON or a refused argument"},
    404: {"model": ErrorReply, "description": "unknown tool or session"},
    409: {"model": ErrorReply, "description": "tool refused now (no task, episode over)"},
    422: {"model": ErrorReply, "description": "missing, extra or mistyped field/argument"},
    503: {"model": ErrorReply, "description": "session limit reached"},
}


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
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


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error", "code"}`` with its status, whichever route raised it."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return json_response(exc.as_dict(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, code, message = validation_message(exc)
        return json_response({"error": message, "code": code}, status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {clip(request.url.path)}; see /docs"
        return json_response({"error": message, "code": code}, exc.status_code, exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return json_response(
            {"error": f"internal server error ({type(exc).__name__})", "code": "internal_error"},
            500,
        )


def add_http_routes(app: FastAPI, service: EnvService, rulesets: tuple[str, ...]) -> None:
    """The HTTP routes over ``service``; ``/metadata`` lists ``rulesets``."""
    registry = service.registry

    @app.get("/health", tags=["server"])
    async def health() -> Response:
        return json_response({"status": "healthy", "tools": len(registry), **service.store.stats()})

    @app.get("/tools", tags=["server"])
    async def tools() -> Response:
        return json_response({"tools": registry.describe()})

    @app.get("/metadata", tags=["server"])
    async def metadata() -> Response:
        return json_response(
            {
                "name": SERVER_NAME,
                "description": "Emergency-department triage environments (Queue Doctor's "
                "tasks and tools); stateful sessions over HTTP, WebSocket and MCP.",
                "version": SERVER_VERSION,
                "tools": list(registry.names()),
                "tasks": list(TASKS),
                "rulesets": list(rulesets),
            }
        )

    @app.get("/schema", tags=["server"])
    async def schema() -> Response:
        return json_response(
            {
                "action": StepRequest.model_json_schema(),
                "observation": StepReply.model_json_schema(),
                "state": StateReply.model_json_schema(),
                "tools": registry.describe(),
            }
        )

    @app.post("/reset", tags=["environment"], response_model=ResetReply, responses=ERRORS)
    async def reset(request: Request, req: ResetRequest | None = None) -> Response:
        req = req or ResetRequest()
        start = start_args({"task_id": req.task_id, "seed": req.seed, "ruleset": req.ruleset})
        return json_response(
            service.reset(req.session_id, start, "http", client_key(request.client))
        )

    @app.post("/step", tags=["environment"], response_model=StepReply, responses=ERRORS)
    async def step(req: StepRequest) -> Response:
        tool, arguments = req.tool_call()
        payload = service.step(req.session_id, tool, arguments)
        # OpenEnv's action shape gets OpenEnv's observation shape back; errors stay 4xx.
        return json_response(openenv_step(payload) if req.action is not None else payload)

    @app.get("/state", tags=["environment"], response_model=StateReply, responses=ERRORS)
    async def state(
        session_id: str = Query(
            ..., max_length=SESSION_ID_CHARS, description="Session id from /reset"
        ),
    ) -> Response:
        return json_response(service.state(session_id))

    @app.delete("/sessions/{session_id}", tags=["environment"])
    async def close_session(session_id: str) -> Response:
        return json_response(service.close(session_id))

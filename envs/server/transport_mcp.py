"""The MCP transport, ``/mcp``: streamable HTTP with JSON responses (no SSE stream).
``POST`` carries one JSON-RPC message (``initialize``, ``tools/list``, ``tools/call``,
``ping``; OpenEnv's ``openenv/session/create`` and ``openenv/session/close``);
``DELETE`` ends the session named by ``Mcp-Session-Id``; ``GET`` is 405."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response

from envs.server.security import clip
from envs.server.service import SERVER_NAME, SERVER_VERSION, EnvService, client_key
from envs.server.sessions import LOCAL_CLIENT, UnknownSessionError
from envs.server.shapes import json_response, tool_refusal, tool_success
from envs.server.tools import ApiError, ArgumentError, UnknownToolError

MCP_PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")
_PARSE_ERROR, _INVALID_REQUEST, _METHOD_NOT_FOUND, _INVALID_PARAMS = -32700, -32600, -32601, -32602
_SESSION_ERROR = -32001


def _rpc_error(msg_id: Any, code: int, message: str, status: int = 200, data: Any = None):
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return json_response({"jsonrpc": "2.0", "id": msg_id, "error": err}, status)


def _rpc_result(msg_id: Any, result: Any, headers: dict[str, str] | None = None) -> Response:
    return json_response({"jsonrpc": "2.0", "id": msg_id, "result": result}, 200, headers)


def mcp_post(
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

    entry = METHODS.get(method)
    if entry is None:
        return _rpc_error(msg_id, _METHOD_NOT_FOUND, f"Method not found: {clip(method)}")
    needs, handler = entry
    if needs == "new":
        try:
            sid = service.store.create("mcp", client).id
        except ApiError as e:
            return _rpc_error(msg_id, _SESSION_ERROR, e.message, e.status, e.as_dict())
    elif needs == "session" and (not isinstance(sid, str) or not sid):
        return _rpc_error(
            msg_id, _INVALID_REQUEST, "missing Mcp-Session-Id header; call initialize first", 400
        )
    try:
        result, headers = handler(service, sid, params)
    except UnknownSessionError as e:  # MCP: a 404 tells the client to re-initialize
        return _rpc_error(msg_id, _SESSION_ERROR, e.message, 404, e.as_dict())
    except (UnknownToolError, ArgumentError) as e:
        return _rpc_error(msg_id, _INVALID_PARAMS, e.message, 200, e.as_dict())
    except ApiError as e:  # the tool ran and refused: an MCP tool error, shown to the model
        return _rpc_result(msg_id, tool_refusal(e))
    return _rpc_result(msg_id, result, headers)


Reply = tuple[Any, dict[str, str] | None]  # JSON-RPC result, extra HTTP headers


def _initialize(service: EnvService, sid: str, params: dict[str, Any]) -> Reply:
    asked = params.get("protocolVersion")
    version = asked if asked in MCP_PROTOCOL_VERSIONS else MCP_PROTOCOL_VERSIONS[0]
    result = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
        "instructions": service.workflow,
    }
    return result, {"Mcp-Session-Id": sid}


def _session_create(service: EnvService, sid: str, params: dict[str, Any]) -> Reply:
    return {"session_id": sid}, None


def _ping(service: EnvService, sid: Any, params: dict[str, Any]) -> Reply:
    return {}, None


def _tools_list(service: EnvService, sid: Any, params: dict[str, Any]) -> Reply:
    return {"tools": service.registry.describe()}, None


def _tools_call(service: EnvService, sid: str, params: dict[str, Any]) -> Reply:
    out = service.step(sid, params.get("name"), params.get("arguments"))
    return tool_success(out["result"]), None


def _session_close(service: EnvService, sid: str, params: dict[str, Any]) -> Reply:
    return service.close(sid), None


METHODS: dict[str, tuple[Literal["new", "none", "session"], Callable[..., Reply]]] = {
    "initialize": ("new", _initialize),
    "openenv/session/create": ("new", _session_create),
    "ping": ("none", _ping),
    "tools/list": ("none", _tools_list),
    "tools/call": ("session", _tools_call),
    "openenv/session/close": ("session", _session_close),
}
"""JSON-RPC method → (the session it runs in: a ``new`` one, ``none``, or the caller's
``session``; its handler (service, session id, params) → (result, headers))."""


def add_mcp_routes(app: FastAPI, service: EnvService) -> None:
    @app.post("/mcp", tags=["mcp"])
    async def mcp(request: Request) -> Response:
        return mcp_post(
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
        return json_response(
            {
                "error": "this MCP server sends no server-initiated stream; POST requests",
                "code": "method_not_allowed",
            },
            405,
            {"Allow": "POST, DELETE"},
        )

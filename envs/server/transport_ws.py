"""The WebSocket transport, ``WS /ws``: the HTTP API over one connection. A connection
gets a session of its own (closed with it), or attaches to an HTTP session with
``?session_id=``. Messages are ``{"type", "id", "data"}``: ``step``, ``reset``,
``state``, ``tools`` (or ``list_tools``) and ``close``; an error is an ``error`` reply,
never a disconnect. OpenEnv's message shapes (``CallToolAction`` and ``ListToolsAction``
as ``step`` data) are answered in OpenEnv's shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, WebSocket

from envs.server.security import clip
from envs.server.service import EnvService, client_key, log, start_args
from envs.server.sessions import UnknownSessionError
from envs.server.shapes import dumps, openenv_observation, openenv_step, tool_refusal
from envs.server.tools import ApiError, ArgumentError, UnknownToolError


def add_ws_route(app: FastAPI, service: EnvService, max_bytes: int) -> None:
    """``/ws`` over ``service``; a message over ``max_bytes`` gets a ``body_too_large`` reply."""
    store = service.store

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
            await websocket.send_text(ws_error(e, None))
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
                if len(raw) > max_bytes:  # uvicorn's own cap may be higher
                    err = ApiError(413, "body_too_large", f"message over {max_bytes} bytes")
                    reply, close = ws_error(err, None), False
                else:
                    reply, close = ws_dispatch(service, sid, raw)
                await websocket.send_text(reply)
                if close:
                    await websocket.close()
                    break
        except Exception as e:  # a vanished client must never take the server down
            log.debug("websocket for session %s ended: %r", sid, e)
        finally:
            if owned:
                store.close(sid)


def ws_error(e: ApiError, msg_id: Any) -> str:
    data = {**e.as_dict(), "message": e.message, "status": e.status}  # message: OpenEnv's key
    return dumps({"type": "error", "id": msg_id, "data": data})


def ws_dispatch(service: EnvService, sid: str, raw: str) -> tuple[str, bool]:
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
        handler = MESSAGES.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            reply_type, reply = handler(service, sid, data)
            return dumps({"type": reply_type, "id": msg_id, "data": reply}), kind == "close"
        raise ApiError(
            400,
            "invalid_request",
            f"unknown message type {clip(kind)}; use step, reset, state, tools or close",
        )
    except ApiError as e:
        return ws_error(e, msg_id), False
    except Exception as e:  # an engine bug: report it, keep the connection
        log.exception("internal error on websocket session %s", sid)
        err = ApiError(500, "internal_error", f"internal server error ({type(e).__name__})")
        return ws_error(err, msg_id), False


def _step(service: EnvService, sid: str, data: dict[str, Any]) -> tuple[str, Any]:
    if data.get("type") == "list_tools":  # OpenEnv's ListToolsAction
        obs = {"tools": service.registry.describe(), "done": False, "reward": None}
        return "observation", {"observation": obs, "reward": None, "done": False}
    tool, arguments, openenv = ws_tool_call(data)
    if openenv:
        return "observation", openenv_ws_step(service, sid, tool, arguments)
    return "observation", service.step(sid, tool, arguments)


def _reset(service: EnvService, sid: str, data: dict[str, Any]) -> tuple[str, Any]:
    data = {k: v for k, v in data.items() if k != "episode_id"}  # OpenEnv's; unused
    extra = sorted(set(data) - {"task_id", "seed", "ruleset"})
    if extra:
        raise ApiError(422, "invalid_request", f"reset: unexpected field(s) {extra}")
    return "observation", service.reset(sid, start_args(data), "ws")


def _state(service: EnvService, sid: str, data: dict[str, Any]) -> tuple[str, Any]:
    return "state", service.state(sid)


def _tools(service: EnvService, sid: str, data: dict[str, Any]) -> tuple[str, Any]:
    return "tools", {"tools": service.registry.describe()}


def _close(service: EnvService, sid: str, data: dict[str, Any]) -> tuple[str, Any]:
    return "closed", {"session_id": sid}  # the connection closes after this reply


MESSAGES: dict[str, Callable[[EnvService, str, dict[str, Any]], tuple[str, Any]]] = {
    "step": _step,
    "reset": _reset,
    "state": _state,
    "tools": _tools,
    "list_tools": _tools,
    "close": _close,
}
"""A message type → its handler: (reply type, reply data) from (service, session, data)."""


def ws_tool_call(data: dict[str, Any]) -> tuple[Any, Any, bool]:
    """(tool, arguments, OpenEnv shape?) from a step message's data."""
    if "tool" in data:  # edmarl shape
        extra = sorted(set(data) - {"tool", "arguments"})
        if extra:
            raise ApiError(422, "invalid_request", f"step: unexpected field(s) {extra}")
        return data["tool"], data.get("arguments"), False
    if "tool_name" in data:  # OpenEnv CallToolAction
        return data["tool_name"], data.get("arguments"), True
    raise ApiError(422, "invalid_request", 'step needs data {"tool": name, "arguments": {...}}')


def openenv_ws_step(service: EnvService, sid: str, tool: Any, arguments: Any) -> dict[str, Any]:
    """OpenEnv semantics over the WebSocket: framework errors in ``observation.error``,
    the tool's own refusals in ``result`` (``isError``), as OpenEnv's MCP servers do."""
    try:
        return openenv_step(service.step(sid, tool, arguments))
    except UnknownSessionError:
        raise
    except (UnknownToolError, ArgumentError) as e:
        kind = "tool_not_found" if isinstance(e, UnknownToolError) else "invalid_args"
        err = {"error_type": kind, "message": e.message}
        return openenv_observation(sid, tool, None, err, None, False)
    except ApiError as e:
        return openenv_observation(sid, tool, tool_refusal(e), None, None, False)

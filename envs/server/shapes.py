"""Reply shapes more than one transport sends: compact JSON, MCP's ``CallToolResult`` and
OpenEnv's ``CallToolObservation`` (HTTP ``/step`` and ``/ws`` answer OpenEnv's action
shape with it; ``/mcp`` wraps tool results the same way)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from envs.server.tools import ApiError


def dumps(obj: Any) -> str:
    """Compact JSON; NaN refused (it is not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    # json.dumps directly: the payloads are plain dicts, FastAPI's encoder would only add cost.
    return Response(
        dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


def tool_result(text: str, structured: Any, is_error: bool) -> dict[str, Any]:
    """MCP ``CallToolResult``. ``data`` (the JSON text) is what OpenEnv's ``MCPToolClient``
    returns from ``call_tool``: Queue Doctor's tools returned exactly that string."""
    out: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured is not None:
        out["structuredContent"] = structured
    out["data"] = text
    return out


def tool_success(value: Any) -> dict[str, Any]:
    """A tool's JSON value as a ``CallToolResult`` (a non-object is wrapped for
    ``structuredContent``, which must be an object)."""
    structured = value if isinstance(value, dict) else {"result": value}
    return tool_result(dumps(value), structured, False)


def tool_refusal(error: ApiError) -> dict[str, Any]:
    """A refused call as an MCP tool error (``isError``), which the model is shown."""
    return tool_result(dumps(error.as_dict()), None, True)


def openenv_step(payload: dict[str, Any]) -> dict[str, Any]:
    """A step reply in OpenEnv's shape (``CallToolObservation``), for callers that sent
    OpenEnv's ``CallToolAction``: the result is an MCP ``CallToolResult`` whose ``data``
    is the tool's JSON text, which OpenEnv's ``MCPToolClient.call_tool`` returns."""
    return openenv_observation(
        payload["session_id"],
        payload["tool"],
        tool_success(payload["result"]),
        None,
        payload["reward"],
        bool(payload["done"]),
    )


def openenv_observation(
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

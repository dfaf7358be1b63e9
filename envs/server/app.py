"""edmarl's environment server: the tool API over HTTP, WebSocket and MCP, with
stateful, isolated sessions. This module composes it; each concern has its own module:

* :mod:`envs.server.service` — :class:`EnvService`, the transport-independent core
  (sessions, tool dispatch, error mapping);
* :mod:`envs.server.transport_http`, :mod:`~envs.server.transport_ws`,
  :mod:`~envs.server.transport_mcp` — the thin translations to ``/reset`` ``/step``
  ``/state`` …, ``/ws`` and ``/mcp``; :mod:`envs.server.shapes` — the reply shapes
  they share (OpenEnv's, MCP's);
* :mod:`envs.server.config` — :class:`ServerConfig`; :mod:`envs.server.cli` — ``main``;
* :mod:`envs.server.security` — the request guards; :mod:`envs.server.console` — the
  web console at ``/``.

Run::

    edmarl-server                          # 127.0.0.1:7860
    python -m envs.server.app --port 8000 --max-sessions 128 --idle-timeout 600
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
openai and huggingface_hub. This server keeps its route names and accepts its action
shape (``{"action": {"type": "call_tool", "tool_name": ..., "arguments": ...}}``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from envs.server.cli import main, parse_args
from envs.server.config import SERVABLE_RULESETS, ServerConfig
from envs.server.console import mount_console
from envs.server.security import SecurityMiddleware
from envs.server.service import SERVER_NAME, SERVER_VERSION, EnvService, client_key, log
from envs.server.tools import ToolRegistry
from envs.server.transport_http import add_error_handlers, add_http_routes
from envs.server.transport_mcp import add_mcp_routes
from envs.server.transport_ws import add_ws_route

__all__ = [
    "SERVABLE_RULESETS",
    "SERVER_NAME",
    "SERVER_VERSION",
    "EnvService",
    "ServerConfig",
    "app",
    "client_key",
    "create_app",
    "main",
    "parse_args",
]


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
    service = EnvService.for_config(config, registry, session_factory)
    store = service.store

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
    add_error_handlers(app)
    add_http_routes(app, service, config.rulesets)
    add_ws_route(app, service, config.max_body_bytes)
    add_mcp_routes(app, service)
    mount_console(app, service)  # the web console at / (envs/server/console.py)
    return app


def _module_app() -> FastAPI:
    try:
        return create_app(ServerConfig.from_env())
    except ValueError as e:  # a bad EDMARL_* variable: one line, not a traceback
        raise SystemExit(f"edmarl server: {e}") from None


app = _module_app()
"""The app ``uvicorn envs.server.app:app`` and ``openenv.yaml`` serve (see ``from_env``)."""

if __name__ == "__main__":
    raise SystemExit(main())

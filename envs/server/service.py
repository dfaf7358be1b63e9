"""The transport-independent core: :class:`EnvService` runs reset / step / state / close
on a session store and a tool registry, returns JSON-ready dicts and raises
:class:`~envs.server.tools.ApiError`; the transports (``transport_http``,
``transport_ws``, ``transport_mcp``) only translate to and from it.

Tools are looked up in a :class:`ToolRegistry` and run on a per-session object
(``envs.tool_api.ToolSession``; with ``ed`` enabled ``envs.ed_tool_api.MultiRulesetSession``,
whose ``start_task(ruleset=...)`` picks the classic or the three-role ``ed`` session); no
engine logic lives here. Tool calls are short and CPU-bound, so they run inline on the
event loop (a thread pool would add latency and, under the GIL, no throughput).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from envs.ed_tool_api import ED_WORKFLOW, MultiRulesetSession
from envs.server.config import ServerConfig
from envs.server.security import is_loopback
from envs.server.sessions import LOCAL_CLIENT, SessionStore
from envs.server.tools import ApiError, ToolRegistry, registry_for
from envs.tool_api import WORKFLOW, ToolError, ToolSession

log = logging.getLogger("edmarl.server")
"""The server's logger (``--log-level``); every transport logs here."""

SERVER_NAME = "edmarl"
SERVER_VERSION = "0.1.0"
SESSION_ID_CHARS = 64
"""Longest session id accepted in a request (ours are 32 hex characters)."""


def client_key(client: tuple[str, int] | Any) -> str:
    """The per-client quota key of a connection: its address, or LOCAL_CLIENT for
    loopback and in-process callers (this machine's own users are not limited)."""
    host = client[0] if client else None
    return LOCAL_CLIENT if host is None or is_loopback(host) else str(host)


def tool_error(e: ToolError) -> ApiError:
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

    @classmethod
    def for_config(
        cls,
        config: ServerConfig,
        registry: ToolRegistry | None = None,
        session_factory: Callable[[], Any] | None = None,
    ) -> EnvService:
        """The service a server with ``config`` runs. ``registry`` defaults to the tools of
        ``config.rulesets`` (the seven Queue Doctor tools; with ``ed`` also the ``ed``
        tools); ``session_factory`` builds one session object per client session (default
        ``ToolSession``, with ``ed`` enabled ``MultiRulesetSession``)."""
        from envs.rulesets import MULTI_AGENT_RULESETS

        ed = any(r in MULTI_AGENT_RULESETS for r in config.rulesets)  # a team ruleset on
        registry = registry_for(config.rulesets) if registry is None else registry
        if session_factory is None:
            session_factory = MultiRulesetSession if ed else ToolSession
        store = SessionStore(session_factory, config.session_config())
        return cls(store, registry, f"{WORKFLOW}\n\n{ED_WORKFLOW}" if ed else WORKFLOW)

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
            raise tool_error(e) from None


def start_args(fields: dict[str, Any]) -> dict[str, Any] | None:
    """start_task arguments from reset fields (None values dropped), or None."""
    start = {k: v for k, v in fields.items() if v is not None}
    if start and "task_id" not in start:
        raise ApiError(422, "invalid_request", "seed and ruleset need task_id")
    return start or None

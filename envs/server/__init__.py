"""edmarl's environment server (FastAPI + uvicorn) and its client.

* :mod:`envs.server.app` — ``create_app`` composing the pieces below, the module-level
  ``app`` (``uvicorn envs.server.app:app``); re-exports ``main`` and ``ServerConfig``;
* :mod:`envs.server.service` — ``EnvService``, the transport-independent core (sessions,
  tool dispatch, error mapping);
* :mod:`envs.server.transport_http`, :mod:`envs.server.transport_ws`,
  :mod:`envs.server.transport_mcp` — HTTP routes, ``/ws`` and ``/mcp``, thin
  translations to and from the service; :mod:`envs.server.shapes` — the reply shapes
  they share;
* :mod:`envs.server.config` — ``ServerConfig``; :mod:`envs.server.cli` — ``main`` (the
  ``edmarl-server`` command, also ``python -m envs.server``);
* :mod:`envs.server.security` — the request guards (token, Host, Origin, body);
* :mod:`envs.server.sessions` — the thread-safe session registry;
* :mod:`envs.server.tools` — the tool registry (name → session method + argument schema);
* :mod:`envs.server.console`, :mod:`envs.server.console_teams` — the web console;
* :mod:`envs.server.client` — ``Client(base_url)``, sync and async, over HTTP or WebSocket.

Nothing is imported here eagerly, so ``import envs.server.client`` does not need FastAPI.
See ``docs/server.md``.
"""

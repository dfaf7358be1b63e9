"""edmarl's environment server (FastAPI + uvicorn) and its client.

* :mod:`envs.server.app` — ``create_app``, ``main`` (the ``edmarl-server`` command, also
  ``python -m envs.server``);
* :mod:`envs.server.security` — the request guards (token, Host, Origin, body);
* :mod:`envs.server.sessions` — the thread-safe session registry;
* :mod:`envs.server.tools` — the tool registry (name → session method + argument schema);
* :mod:`envs.server.client` — ``Client(base_url)``, sync and async, over HTTP or WebSocket.

Nothing is imported here eagerly, so ``import envs.server.client`` does not need FastAPI.
See ``docs/server.md``.
"""

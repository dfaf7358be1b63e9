"""The ``edmarl-server`` command (also ``python -m envs.server`` and
``python -m envs.server.app``): flags → :class:`ServerConfig` → uvicorn.

Run::

    edmarl-server                          # 127.0.0.1:7860
    python -m envs.server --port 8000 --max-sessions 128 --idle-timeout 600
    python -m envs.server --rulesets classic   # only Queue Doctor's seven tools
"""

from __future__ import annotations

import argparse
import logging
import os

from envs.server.config import ServerConfig, name_list, ruleset_list
from envs.server.security import TOKEN_ENV


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
            rulesets=ruleset_list(a.rulesets),
            token=a.token,
            allowed_hosts=None if a.allowed_hosts is None else name_list(a.allowed_hosts),
            allowed_origins=name_list(a.allowed_origins),
        )
    except ValueError as e:
        p.error(str(e))
        raise  # unreachable: p.error exits


def main(argv: list[str] | None = None) -> int:
    from envs.server.app import create_app  # here: envs.server.app imports this module

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

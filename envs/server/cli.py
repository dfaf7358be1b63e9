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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs.server.config import ServerConfig, name_list, ruleset_list
from envs.server.security import TOKEN_ENV


@dataclass(frozen=True)
class Flag:
    """One flag and the :class:`ServerConfig` field it sets: ``type`` converts its text
    (argparse also converts a text default with it), ``env`` names a variable whose value,
    when set, replaces the field's default."""

    name: str
    field: str
    type: Callable[[str], Any] = str
    help: str | None = None
    choices: tuple[str, ...] | None = None
    env: str | None = None


FLAGS: tuple[Flag, ...] = (
    Flag("--host", "host", help="interface to bind (default %(default)s; 0.0.0.0 exposes it "
         "and needs a token)"),
    Flag("--token", "token", env=TOKEN_ENV,
         help=f"bearer token every route but /health requires (default: ${TOKEN_ENV}; prefer "
         "the variable: other users can read command lines)"),
    Flag("--allowed-hosts", "allowed_hosts", name_list,
         "comma-separated Host names to answer (default: loopback names without a token, "
         "any with one)"),
    Flag("--allowed-origins", "allowed_origins", name_list,
         "comma-separated origins (https://app.example) whose pages may call the server; "
         "same-origin pages always may"),
    Flag("--port", "port", int, "default %(default)s"),
    Flag("--max-sessions", "max_sessions", int, "cap on concurrent sessions (default %(default)s)"),
    Flag("--max-sessions-per-client", "max_sessions_per_client", int,
         "sessions one non-loopback client address may hold (default max-sessions / 4)"),
    Flag("--idle-timeout", "idle_timeout_s", float,
         "seconds before an unused session expires (default %(default)s)"),
    Flag("--log-level", "log_level", choices=("critical", "error", "warning", "info", "debug")),
    Flag("--rulesets", "rulesets", ruleset_list,
         "comma-separated rulesets to serve: classic (always) and ed, the multi-agent ED tools "
         "(default %(default)s)"),
)  # fmt: skip
"""Every flag of ``edmarl-server``, in ``--help`` order."""


def _default(flag: Flag, config: ServerConfig) -> Any:
    """The flag's default as argparse takes it: the variable's value when set, else the
    field's default, a tuple as comma-separated text (``type`` turns it back)."""
    if flag.env and os.environ.get(flag.env):
        return os.environ[flag.env]
    value = getattr(config, flag.field)
    return ",".join(value) if isinstance(value, tuple) else value


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(
        prog="edmarl-server",
        description="edmarl environment server (HTTP /reset /step /state, WS /ws, MCP /mcp).",
    )
    defaults = ServerConfig()
    fields: dict[str, str] = {}  # argparse dest -> ServerConfig field
    for f in FLAGS:
        kwargs = {"type": f.type, "help": f.help, "choices": f.choices}
        action = p.add_argument(f.name, default=_default(f, defaults), **kwargs)
        fields[action.dest] = f.field
    a = vars(p.parse_args(argv))
    try:
        return ServerConfig(**{field: a[dest] for dest, field in fields.items()})
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

"""The server's settings: :class:`ServerConfig`, from flags (``envs.server.cli``) or from
``EDMARL_*`` environment variables (the module-level app, ``uvicorn envs.server.app:app``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from envs.rulesets import RULESETS
from envs.server.security import LOOPBACK_HOSTS, TOKEN_ENV, SecurityPolicy, is_loopback
from envs.server.sessions import SessionConfig

SERVABLE_RULESETS = tuple(RULESETS)
"""Rulesets a server can enable; ``classic`` is always on, ``ed`` is opt-in."""


@dataclass(frozen=True)
class ServerConfig:
    host: str | None = "127.0.0.1"
    """Bind address; None when the ASGI server picks it (``uvicorn envs.server.app:app``):
    then requests reaching a non-loopback address need the token."""
    port: int = 7860
    max_sessions: int = 64
    idle_timeout_s: float = 900.0
    reap_interval_s: float | None = None
    """How often expired sessions are dropped; default min(30 s, idle_timeout_s / 4)."""
    max_body_bytes: int = 1 << 20
    log_level: str = "info"
    allowed_hosts: tuple[str, ...] | None = None
    """Accepted Host headers. Default: loopback names without a token (guards against
    DNS rebinding from a browser), any host with one."""
    token: str | None = field(default=None, repr=False)
    """Bearer token every route but /health requires; needed to bind beyond loopback."""
    allowed_origins: tuple[str, ...] = ()
    """Cross-origin pages (``scheme://host:port``) allowed to call; same-origin always is."""
    max_sessions_per_client: int | None = None
    """Sessions one non-loopback client address may hold (default max_sessions // 4)."""
    rulesets: tuple[str, ...] = ("classic", "ed")
    """Enabled rulesets: ``classic`` (Queue Doctor's seven tools) and ``ed`` (the
    multi-agent tools, ``envs.server.tools.ED_TOOLS``, and ``start_task(ruleset="ed")``);
    ``("classic",)`` serves exactly Queue Doctor's tool set."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        unknown = [r for r in self.rulesets if r not in SERVABLE_RULESETS]
        if unknown or "classic" not in self.rulesets:
            raise ValueError(
                f"rulesets must include classic and be among {', '.join(SERVABLE_RULESETS)}; "
                f"got {', '.join(self.rulesets) or 'none'}"
            )
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        if self.token is not None and (len(self.token) < 16 or not self.token.isprintable()):
            raise ValueError("the token must be at least 16 printable characters")
        if self.host is not None and not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"binding {self.host} exposes the server beyond this machine: set a bearer "
                f"token (--token, or the {TOKEN_ENV} environment variable) or bind 127.0.0.1"
            )
        self.session_config()  # validates the session limits

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        """The config of the module-level ``app`` (``uvicorn envs.server.app:app``): uvicorn
        picks the address (``host`` None), so the same guards as ``edmarl-server`` hold:
        loopback Host names only and no requests from beyond loopback unless
        ``EDMARL_TOKEN`` is set. ``EDMARL_ALLOWED_HOSTS``, ``EDMARL_ALLOWED_ORIGINS``
        (comma-separated), ``EDMARL_MAX_SESSIONS``, ``EDMARL_MAX_SESSIONS_PER_CLIENT``,
        ``EDMARL_IDLE_TIMEOUT`` and ``EDMARL_RULESETS`` (e.g. ``classic,ed``) set the rest.
        A bad value is a ValueError naming the variable."""
        env = os.environ if env is None else env

        def number(name: str, kind: type, default: Any) -> Any:
            raw = env.get(name)
            try:
                return default if raw is None else kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected {kind.__name__}") from None

        hosts = env.get("EDMARL_ALLOWED_HOSTS")
        return cls(
            host=None,
            max_sessions=number("EDMARL_MAX_SESSIONS", int, cls.max_sessions),
            max_sessions_per_client=number("EDMARL_MAX_SESSIONS_PER_CLIENT", int, None),
            idle_timeout_s=number("EDMARL_IDLE_TIMEOUT", float, cls.idle_timeout_s),
            allowed_hosts=None if hosts is None else name_list(hosts),
            allowed_origins=name_list(env.get("EDMARL_ALLOWED_ORIGINS", "")),
            token=env.get(TOKEN_ENV) or None,
            rulesets=ruleset_list(env.get("EDMARL_RULESETS", "classic,ed")),
        )

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            max_sessions=self.max_sessions,
            idle_timeout_s=self.idle_timeout_s,
            max_per_client=self.max_sessions_per_client,
        )

    def security_policy(self) -> SecurityPolicy:
        return SecurityPolicy(
            token=self.token,
            allowed_hosts=self.allowed_hosts,
            allowed_origins=self.allowed_origins,
            max_bytes=self.max_body_bytes,
            require_token_off_loopback=self.host is None,
        )

    def reap_every(self) -> float:
        if self.reap_interval_s is not None:
            return self.reap_interval_s
        return max(0.05, min(30.0, self.idle_timeout_s / 4))

    def host_allowlist(self) -> tuple[str, ...]:
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        return ("*",) if self.token else LOOPBACK_HOSTS


def ruleset_list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))


def name_list(text: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in text.split(",") if h.strip())

"""Request guards of the environment server, as one ASGI middleware in front of every
route (HTTP and WebSocket), whichever way the app was started (``create_app``,
``uvicorn envs.server.app:app``, ``edmarl-server``, ``python -m envs.server``).

In order, each answering a JSON error (WebSocket: close 1008) before any route runs:

1. **Host** (DNS rebinding): without a token only loopback Host names are answered,
   unless ``allowed_hosts`` says otherwise — 400 ``bad_host``.
2. **Exposure**: a server whose bind address is not known at start (the module-level
   ``app`` under uvicorn) refuses requests that reach it on a non-loopback address
   unless a token is set — 403 ``token_required`` (``edmarl-server`` refuses to start).
3. **Origin** (cross-site requests, which need no CORS preflight for a ``text/plain``
   or body-less POST): a request with an ``Origin`` header must come from the same
   origin (scheme-less ``host:port`` equal to the Host header) or from
   ``allowed_origins`` — 403 ``bad_origin``.
4. **Token**: with ``token`` set, every route but ``GET /health`` needs
   ``Authorization: Bearer <token>`` (constant-time comparison) — 401 ``unauthorized``.
5. **Content type**: a request body must be ``application/json`` (or ``+json``) —
   415 ``unsupported_media_type``; a cross-site form or ``text/plain`` post never
   reaches a route.
6. **Body size**: the limit holds on the bytes actually read, so a chunked body (no
   Content-Length) is cut off too — 413 ``body_too_large``. The body is read here (it
   is at most ``max_bytes``) and replayed to the route.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_ENV = "EDMARL_TOKEN"
"""Environment variable holding the bearer token (preferred over ``--token``, which
other local users can read in the process list)."""
OPEN_PATHS = frozenset({"/health"})
"""Routes answered without the token (liveness probes)."""
CONSOLE_ASSETS = ("/", "/console/")
"""The web console's page and static files (``GET`` only, outside ``/console/api/``):
a browser loads them by navigation, which cannot send a header; they hold no data,
and the page sends the token (from ``#token=``) with every API call."""


def open_without_token(method: str, path: str) -> bool:
    if path in OPEN_PATHS:
        return True
    if method != "GET" or path.startswith("/console/api/"):
        return False
    return path == CONSOLE_ASSETS[0] or path.startswith(CONSOLE_ASSETS[1])


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header (``[::1]:7860`` → ``[::1]``)."""
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def clip(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was: echoed
    values in error messages stay short whatever a client sends."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


@dataclass(frozen=True)
class SecurityPolicy:
    token: str | None = None
    allowed_hosts: tuple[str, ...] | None = None
    """Accepted Host names; None: loopback names without a token, any with one."""
    allowed_origins: tuple[str, ...] = ()
    """Cross-origin pages allowed to call the server (``https://app.example``)."""
    max_bytes: int = 1 << 20
    require_token_off_loopback: bool = False
    """Refuse requests arriving on a non-loopback address unless a token is set (for
    apps whose bind address is chosen by the ASGI server)."""
    json_paths: frozenset[str] = frozenset({"/reset", "/step"})
    """Routes whose body FastAPI parses: their Content-Type is normalised after the check."""

    def hosts(self) -> frozenset[str] | None:
        """The Host allow-list; None: any host."""
        if self.allowed_hosts is not None:
            return None if "*" in self.allowed_hosts else frozenset(self.allowed_hosts)
        return None if self.token else frozenset(LOOPBACK_HOSTS)


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        self._hosts = policy.hosts()
        self._origins = frozenset(o.rstrip("/").lower() for o in policy.allowed_origins)
        self._token = policy.token.encode() if policy.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            if kind == "http" and scope["method"] in _BODY_METHODS:
                scope, receive = await self._read_body(scope, receive)
        except Refusal as r:
            await self._refuse(kind, r, scope, receive, send)
            return
        except _Disconnected:
            return
        await self.app(scope, receive, send)

    # -- checks ------------------------------------------------------------------------------
    def _check_headers(self, scope: Scope) -> None:
        headers = scope["headers"]
        host = _header(headers, b"host") or ""
        if self._hosts is not None and host_name(host) not in self._hosts:
            raise Refusal(
                400,
                "bad_host",
                f"Host {clip(host)} is not allowed: without a token this server answers "
                "loopback names only (set a token, or list names in --allowed-hosts / "
                "EDMARL_ALLOWED_HOSTS)",
            )
        server = scope.get("server")
        if self.policy.require_token_off_loopback and self._token is None:
            if server is not None and not is_loopback(server[0]):
                raise Refusal(
                    403,
                    "token_required",
                    f"this server is reachable on {server[0]}, beyond loopback: set a bearer "
                    f"token ({TOKEN_ENV}) and send 'Authorization: Bearer <token>'",
                )
        origin = _header(headers, b"origin")
        if origin is not None and not self._origin_ok(origin, host):
            raise Refusal(
                403,
                "bad_origin",
                f"cross-origin request from {clip(origin)} refused; only same-origin pages "
                "and --allowed-origins may call this server",
            )
        if self._token is not None and not open_without_token(
            scope.get("method", "GET"), scope["path"]
        ):
            auth = _header(headers, b"authorization") or ""
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("latin-1"), self._token
            ):
                raise Refusal(
                    401,
                    "unauthorized",
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                    f"(the server's --token / {TOKEN_ENV})",
                    {"WWW-Authenticate": "Bearer"},
                )

    def _origin_ok(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self._origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host.lower()

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        headers = scope["headers"]
        declared = _header(headers, b"content-length")
        chunked = "chunked" in (_header(headers, b"transfer-encoding") or "").lower()
        limit = self.policy.max_bytes
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise Refusal(413, "body_too_large", f"request body over {limit} bytes")
        has_body = chunked or (declared is not None and declared.strip() not in ("", "0"))
        content_type = _header(headers, b"content-type")
        if has_body and (content_type is None or not _is_json(content_type)):
            raise Refusal(
                415,
                "unsupported_media_type",
                f"request bodies must be JSON: send 'Content-Type: application/json' "
                f"(got {clip(content_type) if content_type else 'none'})",
            )
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            body = message.get("body", b"")
            size += len(body)
            if size > limit:  # counted on what arrived, whatever the headers claimed
                raise Refusal(413, "body_too_large", f"request body over {limit} bytes")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        if data and content_type is None:  # e.g. Content-Length: 0 lied
            raise Refusal(415, "unsupported_media_type", "request bodies must be JSON")
        if scope["path"] in self.policy.json_paths:
            rest = [(k, v) for k, v in headers if k != b"content-type"]
            scope = {**scope, "headers": [*rest, (b"content-type", b"application/json")]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as Starlette expects

        return scope, replay

    @staticmethod
    async def _refuse(kind: str, r: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": r.code})
            return
        body = json.dumps({"error": r.message, "code": r.code}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in r.headers.items()]
        if r.status == 413:
            headers.append((b"connection", b"close"))  # the rest of the body is not read
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Disconnected(Exception):
    pass


__all__ = [
    "LOOPBACK_HOSTS",
    "OPEN_PATHS",
    "TOKEN_ENV",
    "SecurityMiddleware",
    "SecurityPolicy",
    "clip",
    "host_name",
    "is_loopback",
]

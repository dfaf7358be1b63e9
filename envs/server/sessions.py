"""Thread-safe session registry: one isolated tool session per id.

* Ids are 128-bit random hex strings (``secrets``), so one client cannot guess another's.
* Each :class:`Session` owns its own session object (a fresh ``ToolSession`` by default)
  and a lock; :meth:`SessionStore.use` holds that lock for the whole tool call, so two
  requests on the same session are serialised and requests on different sessions never
  share state.
* A session unused for ``idle_timeout_s`` expires: it is dropped on the next lookup or by
  :meth:`SessionStore.reap` (the server runs it periodically). A session in use is never
  reaped. Recently expired ids are remembered so the error can say "expired", not just
  "unknown".
* At most ``max_sessions`` live at once; creating one more raises
  :class:`SessionLimitError` (HTTP 503) after first reaping expired sessions.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from envs.server.tools import ApiError

_EXPIRED_MEMORY = 4096


@dataclass(frozen=True)
class SessionConfig:
    max_sessions: int = 64
    idle_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if not self.idle_timeout_s > 0:
            raise ValueError("idle_timeout_s must be > 0")


class UnknownSessionError(ApiError):
    def __init__(self, session_id: object, expired_after: float | None = None) -> None:
        if expired_after is not None:
            super().__init__(
                404,
                "session_expired",
                f"session {session_id!s} expired after {expired_after:g} s without use; "
                "create a new one with POST /reset",
            )
        else:
            super().__init__(
                404,
                "unknown_session",
                f"unknown session_id {session_id!r}; create a session with POST /reset",
            )


class SessionLimitError(ApiError):
    def __init__(self, limit: int, idle_timeout_s: float) -> None:
        super().__init__(
            503,
            "session_limit",
            f"session limit reached ({limit} active); close a session "
            f"(DELETE /sessions/{{id}}) or wait for an idle one to expire "
            f"(idle timeout {idle_timeout_s:g} s)",
            max_sessions=limit,
        )


@dataclass(eq=False)
class Session:
    id: str
    obj: Any
    """The tool session (``ToolSession`` by default)."""
    transport: str
    created_at: float = field(default_factory=time.time)
    last_used: float = 0.0
    calls: int = 0
    in_use: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self, now: float) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "transport": self.transport,
            "created_at": round(self.created_at, 3),
            "idle_s": round(max(0.0, now - self.last_used), 3),
            "calls": self.calls,
        }


class SessionStore:
    """Registry of live sessions; every method is safe to call from any thread."""

    def __init__(
        self,
        factory: Callable[[], Any],
        config: SessionConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.config = config or SessionConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._expired: OrderedDict[str, None] = OrderedDict()
        self.created_total = 0
        self.expired_total = 0

    # -- lifecycle -------------------------------------------------------------------------
    def create(self, transport: str = "http") -> Session:
        obj = self.factory()  # outside the registry lock: construction may be slow
        with self._lock:
            if len(self._sessions) >= self.config.max_sessions:
                self._reap_locked(self._clock())
            if len(self._sessions) >= self.config.max_sessions:
                raise SessionLimitError(self.config.max_sessions, self.config.idle_timeout_s)
            sid = secrets.token_hex(16)
            session = Session(sid, obj, transport, last_used=self._clock())
            self._sessions[sid] = session
            self.created_total += 1
            return session

    def close(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def replace(self, session_id: str, obj: Any) -> Session:
        """Swap the session's tool object (a reset), keeping the id."""
        with self.use(session_id) as session:
            session.obj = obj
            return session

    def now(self) -> float:
        return self._clock()

    def reap(self) -> list[str]:
        """Drop every expired, unused session; returns their ids."""
        with self._lock:
            return self._reap_locked(self._clock())

    # -- access ----------------------------------------------------------------------------
    def get(self, session_id: Any) -> Session:
        with self._lock:
            return self._get_locked(session_id, self._clock())

    @contextmanager
    def use(self, session_id: Any) -> Iterator[Session]:
        """The session with its lock held; idle time restarts when the call ends."""
        with self._lock:
            session = self._get_locked(session_id, self._clock())
            session.in_use += 1
        try:
            with session.lock:
                session.calls += 1
                yield session
        finally:
            with self._lock:
                session.in_use -= 1
                session.last_used = self._clock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._sessions

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "active_sessions": len(self._sessions),
                "max_sessions": self.config.max_sessions,
                "idle_timeout_s": self.config.idle_timeout_s,
                "created_total": self.created_total,
                "expired_total": self.expired_total,
            }

    # -- internals (registry lock held) ----------------------------------------------------
    def _expired_at(self, session: Session, now: float) -> bool:
        return session.in_use == 0 and now - session.last_used > self.config.idle_timeout_s

    def _expire_locked(self, session_id: str) -> None:
        del self._sessions[session_id]
        self.expired_total += 1
        self._expired[session_id] = None
        if len(self._expired) > _EXPIRED_MEMORY:
            self._expired.popitem(last=False)

    def _reap_locked(self, now: float) -> list[str]:
        gone = [sid for sid, s in self._sessions.items() if self._expired_at(s, now)]
        for sid in gone:
            self._expire_locked(sid)
        return gone

    def _get_locked(self, session_id: Any, now: float) -> Session:
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is not None and self._expired_at(session, now):
            self._expire_locked(session.id)
            session = None
        if session is None:
            expired = isinstance(session_id, str) and session_id in self._expired
            raise UnknownSessionError(session_id, self.config.idle_timeout_s if expired else None)
        return session


__all__ = [
    "Session",
    "SessionConfig",
    "SessionLimitError",
    "SessionStore",
    "UnknownSessionError",
]

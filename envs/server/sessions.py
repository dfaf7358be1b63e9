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
* At most ``max_sessions`` live at once, and at most ``max_per_client`` per client
  address (loopback clients — this machine's own users — are not limited per client).
  When either limit is reached, creating one more first reaps expired sessions, then
  evicts the least-recently-used session idle for at least ``evict_idle_s`` (of that
  client, or of anyone when the server is full); only when none qualifies does it raise
  :class:`ClientQuotaError` (429) or :class:`SessionLimitError` (503). So no client can
  hold the server for the idle timeout: its idle sessions make room. An evicted
  session's next call gets 404 ``session_evicted``, saying why.
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

from envs.server.security import clip
from envs.server.tools import ApiError

_EXPIRED_MEMORY = 4096
LOCAL_CLIENT = "local"
"""Client key of in-process and loopback callers (not limited per client)."""


@dataclass(frozen=True)
class SessionConfig:
    max_sessions: int = 64
    idle_timeout_s: float = 900.0
    max_per_client: int | None = None
    """Sessions one non-loopback client address may hold; default max_sessions // 4."""
    evict_idle_s: float | None = None
    """Idle time after which a session may be evicted (LRU) to make room; default
    min(60 s, idle_timeout_s / 4)."""

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if not self.idle_timeout_s > 0:
            raise ValueError("idle_timeout_s must be > 0")
        if self.max_per_client is not None and self.max_per_client < 1:
            raise ValueError("max_per_client must be at least 1")
        if self.evict_idle_s is not None and not self.evict_idle_s >= 0:
            raise ValueError("evict_idle_s must be >= 0")

    @property
    def per_client(self) -> int:
        if self.max_per_client is not None:
            return self.max_per_client
        return max(1, self.max_sessions // 4)

    @property
    def evict_after(self) -> float:
        if self.evict_idle_s is not None:
            return self.evict_idle_s
        return min(60.0, self.idle_timeout_s / 4)


class UnknownSessionError(ApiError):
    def __init__(
        self, session_id: object, expired_after: float | None = None, evicted: str | None = None
    ) -> None:
        if evicted is not None:
            super().__init__(
                404,
                "session_evicted",
                f"session {session_id!s} was evicted: {evicted}; create a new one with "
                "POST /reset (and close sessions you no longer need)",
            )
        elif expired_after is not None:
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
                f"unknown session_id {clip(session_id)}; create a session with POST /reset",
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


class ClientQuotaError(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            429,
            "client_session_quota",
            f"this client already holds {limit} sessions, all in use; close one "
            "(DELETE /sessions/{id}) before creating another",
            max_sessions_per_client=limit,
        )


@dataclass(eq=False)
class Session:
    id: str
    obj: Any
    """The tool session (``ToolSession`` by default)."""
    transport: str
    client: str = LOCAL_CLIENT
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
        self._expired: OrderedDict[str, str | None] = OrderedDict()
        """Recently dropped ids → None (expired) or why they were evicted."""
        self.created_total = 0
        self.expired_total = 0
        self.evicted_total = 0

    # -- lifecycle -------------------------------------------------------------------------
    def create(self, transport: str = "http", client: str = LOCAL_CLIENT) -> Session:
        """A new session for ``client`` (its address; :data:`LOCAL_CLIENT` is unlimited
        per client), making room by LRU eviction of idle sessions when a limit is hit."""
        obj = self.factory()  # outside the registry lock: construction may be slow
        cfg = self.config
        with self._lock:
            now = self._clock()
            mine = [s for s in self._sessions.values() if s.client == client]
            if client != LOCAL_CLIENT and len(mine) >= cfg.per_client:
                self._reap_locked(now)
                mine = [s for s in mine if s.id in self._sessions]
                if len(mine) >= cfg.per_client:
                    why = f"its client reached the quota of {cfg.per_client} sessions"
                    if not self._evict_lru_locked(mine, now, why):
                        raise ClientQuotaError(cfg.per_client)
            if len(self._sessions) >= cfg.max_sessions:
                self._reap_locked(now)
            if len(self._sessions) >= cfg.max_sessions:
                why = f"the server was full ({cfg.max_sessions} sessions)"
                if not self._evict_lru_locked(list(self._sessions.values()), now, why):
                    raise SessionLimitError(cfg.max_sessions, cfg.idle_timeout_s)
            sid = secrets.token_hex(16)
            session = Session(sid, obj, transport, client, last_used=now)
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
                "evicted_total": self.evicted_total,
                "max_sessions_per_client": self.config.per_client,
            }

    # -- internals (registry lock held) ----------------------------------------------------
    def _expired_at(self, session: Session, now: float) -> bool:
        return session.in_use == 0 and now - session.last_used > self.config.idle_timeout_s

    def _expire_locked(self, session_id: str, evicted: str | None = None) -> None:
        del self._sessions[session_id]
        if evicted is None:
            self.expired_total += 1
        else:
            self.evicted_total += 1
        self._expired[session_id] = evicted
        if len(self._expired) > _EXPIRED_MEMORY:
            self._expired.popitem(last=False)

    def _evict_lru_locked(self, candidates: list[Session], now: float, why: str) -> bool:
        """Evict the least recently used of ``candidates`` idle for ``evict_after``."""
        idle = [
            s for s in candidates if s.in_use == 0 and now - s.last_used >= self.config.evict_after
        ]
        if not idle:
            return False
        lru = min(idle, key=lambda s: s.last_used)
        self._expire_locked(
            lru.id, f"least recently used (idle {now - lru.last_used:.0f} s) when {why}"
        )
        return True

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
            known = isinstance(session_id, str) and session_id in self._expired
            evicted = self._expired[session_id] if known else None
            raise UnknownSessionError(
                session_id,
                self.config.idle_timeout_s if known and evicted is None else None,
                evicted,
            )
        return session


__all__ = [
    "LOCAL_CLIENT",
    "ClientQuotaError",
    "Session",
    "SessionConfig",
    "SessionLimitError",
    "SessionStore",
    "UnknownSessionError",
]

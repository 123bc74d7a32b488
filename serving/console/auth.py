"""Console sessions: an API key typed into the login form becomes an HttpOnly session cookie.

The key is checked like the API checks it (`serving.keys.authenticate`: hashed keys from the keys
file, or PARITY_API_KEYS), and the session carries that key's name, client scope and roles. The
cookie holds only a random session token; the session itself (with the key, needed to call the
service's own /v1/predict in-process) stays in this process's memory, so the key never appears in
a cookie, URL, page or log, and a restart ends every session. A session whose key is no longer
configured is refused. Forms carry a CSRF token derived from the session (plus SameSite=Strict).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from serving.keys import ApiKey, authenticate

COOKIE = "parity_console"
SESSION_TTL = timedelta(hours=12)
MAX_SESSIONS = 10_000  # oldest sessions are dropped beyond this: memory stays bounded
NAME_PATTERN = re.compile(r"^[\w .@'-]{1,60}$")
# what each console page needs, in the API's roles (serving/keys.py): looking customers up and
# deciding on them is acting on scores (`score`); models and service-wide numbers are `read_model`
PAGE_ROLES = {"customer": "score", "review": "score", "models": "read_model", "operations": "read_model",
              "health": "score", "catalogue": "read_model"}


class LoginError(ValueError):
    """The login form was refused (the message is safe to show: it never contains the key)."""


@dataclass(frozen=True)
class Session:
    """A signed-in reviewer: the key's name, scope and roles, the name they gave, until when."""

    token: str
    key: str  # in memory only: the console calls /v1/predict with it
    key_name: str
    key_sha256: str
    name: str
    expires_at: datetime
    roles: frozenset[str]
    clients: frozenset[str] | None  # None: every client

    @property
    def who(self) -> str:
        """How decisions and actions are attributed: the person's name and the key's name."""
        return f"{self.name} (key {self.key_name})"

    def may(self, role: str) -> bool:
        return role in self.roles

    def sees(self, client: str) -> bool:
        return self.clients is None or client in self.clients

    def visible(self, clients: Sequence[str]) -> tuple[str, ...]:
        """The clients of `clients` this key may see."""
        return tuple(c for c in clients if self.sees(c))


def clean_name(name: str | None) -> str:
    """The reviewer's name with blanks collapsed, or LoginError."""
    name = " ".join((name or "").split())
    if not NAME_PATTERN.match(name):
        raise LoginError("enter your name (1-60 letters, digits, spaces, . @ ' -): decisions are recorded under it")
    return name


class Sessions:
    """The console's live sessions (thread-safe, bounded, expiring)."""

    def __init__(self, ttl: timedelta = SESSION_TTL, max_sessions: int = MAX_SESSIONS):
        self.ttl, self.max_sessions = ttl, max_sessions
        self._live: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def login(self, keys: Sequence[ApiKey], offered_key: str, name: str, now: datetime) -> Session:
        """Check the form's name and key; a new session."""
        name = clean_name(name)
        key = (offered_key or "").strip()
        entry = authenticate(keys, key)
        if entry is None:
            raise LoginError("unknown API key")
        session = Session(secrets.token_urlsafe(32), key, entry.name, entry.sha256, name, now + self.ttl,
                          entry.roles, entry.clients)
        with self._lock:
            self._live[session.token] = session
            while len(self._live) > self.max_sessions:
                self._live.popitem(last=False)
        return session

    def get(self, keys: Sequence[ApiKey], token: str | None, now: datetime) -> Session | None:
        """The session of a cookie, or None (unknown, expired, or its key is no longer configured)."""
        if not token:
            return None
        with self._lock:
            session = self._live.get(token)
            if session is not None and session.expires_at <= now:
                del self._live[token]
                session = None
        if session is None or not any(hmac.compare_digest(session.key_sha256, k.sha256) for k in keys):
            return None
        return session

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._live.pop(token or "", None)


def csrf_token(session: Session) -> str:
    """The token every console form carries (tied to this session)."""
    return hmac.new(session.token.encode(), b"parity-console/csrf", hashlib.sha256).hexdigest()[:32]


def csrf_ok(session: Session, token: str | None) -> bool:
    """Whether a submitted form's token belongs to this session."""
    return bool(token) and hmac.compare_digest(csrf_token(session), token)

"""Console sessions: an API key typed into the login form becomes a signed, HttpOnly cookie.

The cookie holds the key's id (an HMAC of the key, not the key), the reviewer's name and an expiry,
signed with HMAC-SHA256 under the key itself. So a session needs no server-side store, survives a
restart, and dies with its key: removing a key from the service's configuration invalidates every
session made with it. The key never appears in a URL, a page or a log. Forms carry a CSRF token
derived from the session (plus SameSite=Strict on the cookie).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

COOKIE = "parity_console"
SESSION_TTL = timedelta(hours=12)
NAME_PATTERN = re.compile(r"^[\w .@'-]{1,60}$")
# API keys carry no roles yet (one flat list, PARITY_API_KEYS): every valid key may read the
# console and record review decisions. Roles, when keys get them, are decided in `roles_of`.
ALL_ROLES = frozenset({"read", "review"})


class LoginError(ValueError):
    """The login form was refused (the message is safe to show: it never contains the key)."""


@dataclass(frozen=True)
class Session:
    """A signed-in reviewer: which key (by id), the name they gave, until when."""

    key: str
    key_id: str
    name: str
    expires_at: datetime
    roles: frozenset[str]

    @property
    def who(self) -> str:
        """How decisions and actions are attributed: the name and the key's id."""
        return f"{self.name} (key {self.key_id})"


def key_id(key: str) -> str:
    """A short, stable identifier of a key (an HMAC of it: the key cannot be read back)."""
    return hmac.new(key.encode(), b"parity-console/key-id", hashlib.sha256).hexdigest()[:12]


def roles_of(key: str) -> frozenset[str]:
    """What a key may do in the console (today every key may do everything: keys have no roles)."""
    return ALL_ROLES


def match_key(keys: Iterable[str], offered: str) -> str | None:
    """The configured key equal to `offered` (constant-time compare against each), or None."""
    found = None
    for key in keys:
        if key and hmac.compare_digest(offered.encode(), key.encode()):
            found = key
    return found


def _sign(key: str, payload: bytes) -> str:
    return hmac.new(key.encode(), b"parity-console/session\x00" + payload, hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def login(keys: Iterable[str], offered_key: str, name: str, now: datetime) -> tuple[Session, str]:
    """Check the form's key and name; the session and its cookie value."""
    name = " ".join((name or "").split())
    if not NAME_PATTERN.match(name):
        raise LoginError("enter your name (1-60 letters, digits, spaces, . @ ' -): decisions are recorded under it")
    key = match_key(keys, (offered_key or "").strip())
    if key is None:
        raise LoginError("unknown API key")
    expires = now + SESSION_TTL
    session = Session(key, key_id(key), name, expires, roles_of(key))
    payload = orjson.dumps({"k": session.key_id, "n": name, "e": int(expires.timestamp())})
    return session, f"{_b64(payload)}.{_sign(key, payload)}"


def read_session(keys: Iterable[str], cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie proves, or None (absent, forged, expired, or its key was removed)."""
    if not cookie or cookie.count(".") != 1:
        return None
    encoded, signature = cookie.split(".")
    try:
        payload = _unb64(encoded)
        data = orjson.loads(payload)
        kid, name, expires = str(data["k"]), str(data["n"]), int(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    key = next((k for k in keys if k and hmac.compare_digest(key_id(k), kid)), None)
    if key is None or not hmac.compare_digest(_sign(key, payload), signature):
        return None
    expires_at = datetime.fromtimestamp(expires, timezone.utc)
    if expires_at <= now:
        return None
    return Session(key, kid, name, expires_at, roles_of(key))


def csrf_token(session: Session) -> str:
    """The token every console form carries (tied to this session and key)."""
    message = f"{session.key_id}\x00{session.name}\x00{int(session.expires_at.timestamp())}".encode()
    return hmac.new(session.key.encode(), b"parity-console/csrf\x00" + message, hashlib.sha256).hexdigest()[:32]


def csrf_ok(session: Session, token: str | None) -> bool:
    """Whether a submitted form's token belongs to this session."""
    return bool(token) and hmac.compare_digest(csrf_token(session), token)

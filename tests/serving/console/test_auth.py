"""Console sessions: the API's keys (hashed, scoped, with roles), a random token in the cookie."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from serving.console import auth
from serving.keys import ApiKey, hash_key, plain_keys

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SCOPED = ApiKey("acme-team", hash_key("acme-secret"), frozenset({"acme"}), frozenset({"score"}))
KEYS = plain_keys(["first-key"]) + [SCOPED]


def test_a_session_carries_the_keys_name_scope_and_roles_not_the_key_in_its_token():
    sessions = auth.Sessions()
    session = sessions.login(KEYS, " acme-secret ", "  Ann   Reviewer ", NOW)
    assert session.name == "Ann Reviewer" and session.who == "Ann Reviewer (key acme-team)"
    assert session.may("score") and not session.may("read_model")
    assert session.visible(["acme", "bolt", "cora"]) == ("acme",)
    assert "acme-secret" not in session.token and len(session.token) >= 40
    assert sessions.get(KEYS, session.token, NOW + timedelta(hours=1)) == session
    full = sessions.login(KEYS, "first-key", "Bob", NOW)
    assert full.visible(["acme", "bolt"]) == ("acme", "bolt") and full.may("read_model")
    assert full.token != session.token


@pytest.mark.parametrize("key, name, message", [
    ("wrong", "Ann", "unknown API key"),
    ("", "Ann", "unknown API key"),
    ("first-key", "", "enter your name"),
    ("first-key", "<script>", "enter your name"),
])
def test_login_refuses_unknown_keys_and_odd_names(key, name, message):
    with pytest.raises(auth.LoginError, match=message):
        auth.Sessions().login(KEYS, key, name, NOW)


def test_unknown_expired_logged_out_or_revoked_sessions_are_refused():
    sessions = auth.Sessions()
    session = sessions.login(KEYS, "acme-secret", "Ann", NOW)
    for junk in (None, "", "abc", session.token + "x"):
        assert sessions.get(KEYS, junk, NOW) is None
    assert sessions.get(plain_keys(["first-key"]), session.token, NOW) is None  # its key was removed
    assert sessions.get(KEYS, session.token, NOW + auth.SESSION_TTL) is None  # expired (and dropped)
    assert sessions.get(KEYS, session.token, NOW) is None
    other = sessions.login(KEYS, "acme-secret", "Ann", NOW)
    sessions.logout(other.token)
    assert sessions.get(KEYS, other.token, NOW) is None


def test_sessions_are_bounded():
    sessions = auth.Sessions(max_sessions=2)
    first, *_ = [sessions.login(KEYS, "first-key", "Ann", NOW) for _ in range(3)]
    assert sessions.get(KEYS, first.token, NOW) is None  # the oldest went first


def test_csrf_token_belongs_to_one_session():
    sessions = auth.Sessions()
    ann, bob = sessions.login(KEYS, "first-key", "Ann", NOW), sessions.login(KEYS, "first-key", "Bob", NOW)
    assert auth.csrf_ok(ann, auth.csrf_token(ann))
    assert not auth.csrf_ok(ann, auth.csrf_token(bob))
    assert not auth.csrf_ok(ann, None) and not auth.csrf_ok(ann, "")

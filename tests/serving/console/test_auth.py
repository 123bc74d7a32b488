"""Console sessions: signed cookies that never hold the key and die with it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from serving.console import auth

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
KEYS = ("first-key", "second-key")


def test_a_session_names_its_reviewer_and_key_without_holding_the_key():
    session, cookie = auth.login(KEYS, " second-key ", "  Ann   Reviewer ", NOW)
    assert session.name == "Ann Reviewer" and session.key == "second-key"
    assert session.who == f"Ann Reviewer (key {auth.key_id('second-key')})"
    assert "second-key" not in cookie
    again = auth.read_session(KEYS, cookie, NOW + timedelta(hours=1))
    assert again == session


@pytest.mark.parametrize("key, name, message", [
    ("wrong", "Ann", "unknown API key"),
    ("", "Ann", "unknown API key"),
    ("first-key", "", "enter your name"),
    ("first-key", "<script>", "enter your name"),
])
def test_login_refuses_unknown_keys_and_odd_names(key, name, message):
    with pytest.raises(auth.LoginError, match=message):
        auth.login(KEYS, key, name, NOW)


def test_forged_expired_or_revoked_sessions_are_refused():
    _, cookie = auth.login(KEYS, "first-key", "Ann", NOW)
    payload, signature = cookie.split(".")
    _, other = auth.login(KEYS, "first-key", "Bob", NOW)
    assert auth.read_session(KEYS, f"{other.split('.')[0]}.{signature}", NOW) is None  # Bob's name, Ann's signature
    assert auth.read_session(KEYS, f"{payload}.{'0' * 64}", NOW) is None
    assert auth.read_session(KEYS, cookie, NOW + auth.SESSION_TTL) is None  # expired
    assert auth.read_session(("second-key",), cookie, NOW) is None  # its key was removed
    for junk in (None, "", "abc", "a.b.c", "!!!.x"):
        assert auth.read_session(KEYS, junk, NOW) is None


def test_csrf_token_belongs_to_one_session():
    ann, _ = auth.login(KEYS, "first-key", "Ann", NOW)
    bob, _ = auth.login(KEYS, "second-key", "Bob", NOW)
    assert auth.csrf_ok(ann, auth.csrf_token(ann))
    assert not auth.csrf_ok(ann, auth.csrf_token(bob))
    assert not auth.csrf_ok(ann, None) and not auth.csrf_ok(ann, "")

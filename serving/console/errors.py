"""The console's exceptions, importable without the console's pages (the app registers their
handlers at start-up; the pages themselves load on the first /console request)."""

from __future__ import annotations


class FormError(ValueError):
    """A posted form that is not a small url-encoded form."""


class NotAllowed(Exception):
    """The session's key lacks the role a page needs (HTTP 403 page)."""


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login form."""

    def __init__(self, next_path: str):
        self.next_path = next_path

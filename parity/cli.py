"""Helpers shared by the command-line entry points (parity, training, batch, monitoring)."""

from __future__ import annotations

import argparse
import warnings
from datetime import datetime, timezone


def quiet_feast() -> None:
    """Silence third-party noise on every Feast retrieval (ibis's fetch_arrow_table deprecation,
    the on-demand view's "experimental" warning) in a CLI's output.

    Importing feast installs its own warning filters, so ours go in after that import.
    """
    import feast  # noqa: F401

    warnings.filterwarnings("ignore", message="fetch_arrow_table", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="On demand feature view is an experimental")


def parse_time(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime (no offset = UTC); an argparse `type=`."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

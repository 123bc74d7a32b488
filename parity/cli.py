"""Helpers shared by the command-line entry points (parity, batch, monitoring)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone


def parse_time(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime (no offset = UTC); an argparse `type=`."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

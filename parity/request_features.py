"""Request-time feature transformations (the code behind Feast's on-demand feature views).

Feast stores a python-mode transformation as source text in its registry and re-creates it
without this module's globals, so each transformation must be self-contained (imports inside).
Training, serving and the parity check all run this same registered code.
"""

from __future__ import annotations

from typing import Any


def request_recency(inputs: dict[str, Any]) -> dict[str, Any]:
    """days_since_last_purchase = request_at - last_purchase_at, in fractional days (None if missing).

    Naive timestamps are taken as UTC; pandas Timestamps and datetimes are both accepted, so the
    offline (Arrow) and online (Python) paths give identical floats.
    """
    from datetime import timezone

    def utc(value: Any) -> Any:
        if value is None or value != value:  # None, NaT or NaN
            return None
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    days = []
    for last, now in zip(inputs["last_purchase_at"], inputs["request_at"]):
        last_utc, now_utc = utc(last), utc(now)
        days.append(None if last_utc is None or now_utc is None else (now_utc - last_utc).total_seconds() / 86400.0)
    return {"days_since_last_purchase": days}

"""A small Python client for the prediction API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx


def predict(customer_ids: Sequence[str], api_key: str, base_url: str = "http://127.0.0.1:8000",
            timeout: float = 10.0) -> dict[str, Any]:
    """POST /v1/predict for the given customers; raises httpx.HTTPStatusError on a non-2xx answer."""
    response = httpx.post(
        f"{base_url.rstrip('/')}/v1/predict",
        json={"customers": [{"customer_id": cid} for cid in customer_ids]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
    response.raise_for_status()
    return response.json()

"""Customer keys in requests, normalised as staging keys them (parity.customer_keys): a key of
/v1/predict or /v1/events written the way the client's own files write it ('cora:cr-00025',
' CORA:CR-00025') names the same customer as the built key 'cora:CR-00025'; the response then
carries the canonical key. Two keys of one request that name the same customer are refused (422),
as two identical keys are."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi.exceptions import RequestValidationError

from parity.customer_keys import customer_keys


def canonical_ids(raw: Sequence[str], project_root: Path, where: str = "customers") -> list[str]:
    """Each key in canonical form (request order); 422 when two of them name one customer."""
    ids = customer_keys(project_root).canonical_many(raw)
    if ids != raw:  # only a changed key can collide (identical keys are refused by the schema)
        first: dict[str, int] = {}
        errors = []
        for k, key in enumerate(ids):
            if key in first:
                errors.append({"loc": ("body", where, k, "customer_id"), "type": "value_error",
                               "msg": f"{raw[k]!r} names the same customer as {raw[first[key]]!r} "
                                      f"(index {first[key]}): {key!r}", "input": raw[k]})
            first.setdefault(key, k)
        if errors:
            raise RequestValidationError(errors[:20])
    return ids

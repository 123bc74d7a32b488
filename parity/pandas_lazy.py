"""Checks for pandas objects that do not import pandas: the serving process never imports it
before it is ready (~0.15 s of cold start), and no DataFrame or `pd.NA` can exist in a process
that has not imported pandas."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def loaded() -> ModuleType | None:
    """The pandas module if this process imported it, else None."""
    return sys.modules.get("pandas")


def is_frame(value: Any) -> bool:
    """isinstance(value, pandas.DataFrame), without importing pandas."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def is_series(value: Any) -> bool:
    """isinstance(value, pandas.Series), without importing pandas."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.Series)


def na() -> Any:
    """pandas.NA if pandas is imported, else a sentinel nothing is (`value is na()` is False)."""
    pd = sys.modules.get("pandas")
    return pd.NA if pd is not None else _NOTHING


_NOTHING = object()

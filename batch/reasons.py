"""Reasons in words moved to `parity.models.reasons` (the console words its reasons the same way)."""

from parity.models.reasons import describe, direction, reasons

__all__ = ["describe", "direction", "reasons"]

"""Errors a training run reports to the user (the CLI prints the message and exits 2)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Base class: something about the inputs makes training impossible or unsafe."""


class ConfigError(TrainingError):
    """The training configuration is invalid."""


class DataError(TrainingError):
    """The labels or features cannot be trained on (empty, single class, unobserved, all null)."""


class LeakageError(TrainingError):
    """Information from the future (or from the label) would reach the model."""

"""YAML config files -> frozen dataclasses: the one loader behind training, batch and monitoring.

Each package keeps its own dataclasses, defaults, range checks and error class (so its CLI can
print the message and exit); this module does the shared part: read the file, deep-merge
overrides, refuse unknown keys naming where they are, build nested dataclasses, turn YAML lists
into the tuples the dataclasses declare, and turn `--set a.b=value` into overrides.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def read_yaml(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The file's top-level mapping ({} for an empty file); `error` names `what` and the path."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise error(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, Mapping):
        raise error(f"{what} {path} must be a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def build(cls: type[T], data: Any, error: type[Exception], what: str, where: str = "") -> T:
    """Instantiate dataclass `cls` from a mapping.

    Unknown keys are refused (naming `where`, e.g. `drift`, and the known keys); fields typed as
    a dataclass, or `dict[str, <dataclass>]`, are built recursively; lists become tuples where
    the field is a tuple. A missing or null section takes its defaults.
    """
    label = where or what
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise error(f"{label} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"unknown key(s) {unknown} in {label}; known: {sorted(names)}")
    values = {}
    for name, value in data.items():
        hint, path = hints[name], f"{where}.{name}".lstrip(".")
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            values[name] = build(hint, value, error, what, path)
        elif origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]) and isinstance(value, Mapping):
            values[name] = {key: build(args[1], spec, error, what, f"{path}.{key}") for key, spec in value.items()}
        elif origin is tuple and isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base` (mappings merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_assignments(assignments: list[str], error: type[Exception]) -> dict[str, Any]:
    """`["bootstrap.reps=200", ...]` -> nested overrides (values parsed as YAML)."""
    overrides: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise error(f"--set expects key.path=value, got {item!r}")
        path, raw = item.split("=", 1)
        node = overrides
        keys = path.strip().split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw)
    return overrides

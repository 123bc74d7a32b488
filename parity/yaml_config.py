"""YAML config files -> frozen, typed pydantic models: the one loader behind every package's config.

A package's own `config.yaml` holds every default, with the comment that says why; its model
declares names and types only (no default values), so each value has one home. A user's file
(`--config`) and overrides (`--set a.b=value`) are layered over those defaults and need only say
what differs. Unknown keys, wrong types and missing keys are refused with the file (or
`overrides`) and the dotted key named. Range checks that types cannot express stay with each
package, which also picks the error class its CLI prints.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from parity.jsonable import jsonable

OVERRIDES = "overrides"


class ConfigModel(BaseModel):
    """A config section: unknown keys refused, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (recorded in metadata, summaries and reports)."""
        return jsonable(self.model_dump())


M = TypeVar("M", bound=ConfigModel)


def read_yaml(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The file's top-level mapping ({} for an empty file); `error` names `what` and the path."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise error(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, Mapping):
        raise error(f"{what} {path} must be a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base`: mappings merge, a null section (`drift:` with
    nothing under it) keeps the base's mapping, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        elif value is None and isinstance(merged.get(key), Mapping):
            continue
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_assignments(assignments: Sequence[str], error: type[Exception]) -> dict[str, Any]:
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
            if not isinstance(node, dict):
                raise error(f"--set {item!r}: {key} is already set to a value, not a section")
        node[keys[-1]] = yaml.safe_load(raw)
    return overrides


def load(
    model: type[M],
    defaults: Path,
    error: type[Exception],
    what: str,
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> M:
    """`defaults` (the package's config.yaml), then the file at `path`, then `overrides`, merged
    and validated into `model`; every problem names its file (or `overrides`) and dotted key."""
    layers = [(str(defaults), read_yaml(defaults, error, what))]
    if path is not None and Path(path).resolve() != Path(defaults).resolve():
        layers.append((str(path), read_yaml(Path(path), error, what)))
    if overrides:
        layers.append((OVERRIDES, dict(overrides)))
    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = merge(merged, data)
    try:
        return model.model_validate(merged)
    except ValidationError as err:
        problems = [_problem(model, layers, e) for e in err.errors()]
        raise error(f"invalid {what}: " + "; ".join(problems)) from None


def _problem(model: type[ConfigModel], layers: list[tuple[str, dict]], e: Mapping[str, Any]) -> str:
    """One validation error as '<source>: <what is wrong with which key>'."""
    loc = tuple(str(part) for part in e["loc"])
    key = ".".join(loc)
    if e["type"] == "missing":  # only the defaults can be incomplete: later layers merge over them
        return f"{layers[0][0]}: missing key '{key}'"
    source = next((name for name, data in reversed(layers) if _has(data, loc)), layers[-1][0])
    if e["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        return f"{source}: unknown key '{key}'" + (f" (known: {', '.join(known)})" if known else "")
    return f"{source}: {key}: {e['msg']} (got {e.get('input')!r})"


def _has(data: Any, loc: tuple[str, ...]) -> bool:
    for part in loc:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def _known_keys(model: type[ConfigModel], loc: tuple[str, ...]) -> list[str]:
    """The keys allowed at `loc` (a section, or an entry of a `dict[str, <section>]`)."""
    node: Any = model
    parts = list(loc)
    while parts:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(parts.pop(0))
            if field is None:
                return []
            node = field.annotation
        elif typing.get_origin(node) is dict:
            parts.pop(0)
            node = typing.get_args(node)[1]
        else:
            return []
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []

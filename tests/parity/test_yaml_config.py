"""The shared YAML -> dataclass loader behind the training, batch and monitoring configs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from parity import yaml_config


class Bad(RuntimeError):
    pass


@dataclass(frozen=True)
class Inner:
    k: int = 1
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    byname: dict[str, Inner] = field(default_factory=dict)
    grid: dict[str, list[int]] = field(default_factory=dict)


def test_builds_nested_sections_tuples_and_named_sections():
    got = yaml_config.build(
        Outer, {"inner": {"names": ["a", "b"]}, "byname": {"x": None, "y": {"k": 3}}, "grid": {"d": [1, 2]}}, Bad, "cfg"
    )
    assert got == Outer(Inner(1, ("a", "b")), {"x": Inner(), "y": Inner(3)}, {"d": [1, 2]})
    assert yaml_config.build(Outer, {"inner": None}, Bad, "cfg") == Outer()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inner": {"kk": 2}}, "unknown key(s) ['kk'] in inner; known: ['k', 'names']"),
        ({"byname": {"x": {"nope": 1}}}, "unknown key(s) ['nope'] in byname.x"),
        ({"inner": [1]}, "inner must be a mapping, got list"),
        ({"extra": 1}, "unknown key(s) ['extra'] in cfg"),
    ],
)
def test_refuses_unknown_keys_and_wrong_shapes_naming_where(data, message):
    with pytest.raises(Bad) as err:
        yaml_config.build(Outer, data, Bad, "cfg")
    assert message in str(err.value)


def test_read_yaml_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a list\n")
    with pytest.raises(Bad, match=r"cfg .*c\.yaml must be a mapping"):
        yaml_config.read_yaml(path, Bad, "cfg")
    path.write_text("a: [unclosed\n")
    with pytest.raises(Bad, match=r"cannot read cfg .*c\.yaml"):
        yaml_config.read_yaml(path, Bad, "cfg")
    path.write_text("")
    assert yaml_config.read_yaml(path, Bad, "cfg") == {}


def test_merge_and_assignments():
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    overrides = yaml_config.parse_assignments(["a.b=5", "d=[2, 3]"], Bad)
    assert overrides == {"a": {"b": 5}, "d": [2, 3]}
    assert yaml_config.merge(base, overrides) == {"a": {"b": 5, "c": 2}, "d": [2, 3]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}  # not modified
    with pytest.raises(Bad, match="key.path=value"):
        yaml_config.parse_assignments(["novalue"], Bad)

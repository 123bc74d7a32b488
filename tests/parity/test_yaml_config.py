"""The one typed config loader (parity.yaml_config) and the package configs built on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from parity import yaml_config
from parity.yaml_config import ConfigModel

ROOT = Path(__file__).resolve().parents[2]


class Bad(RuntimeError):
    pass


class Inner(ConfigModel):
    k: int
    names: tuple[str, ...] = ()


class Entry(ConfigModel):
    params: dict[str, float] = Field(default_factory=dict)


class Outer(ConfigModel):
    inner: Inner
    byname: dict[str, Entry]
    rate: float


DEFAULTS = "inner: {k: 1, names: [a]}\nbyname: {x: {params: {p: 1}}}\nrate: 0.5\n"


@pytest.fixture
def defaults(tmp_path: Path) -> Path:
    path = tmp_path / "defaults.yaml"
    path.write_text(DEFAULTS)
    return path


def test_layers_defaults_then_file_then_overrides(defaults, tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("inner: {k: 2}\nbyname: {y: {}}\n")
    got = yaml_config.load(Outer, defaults, Bad, "cfg", user, {"rate": 1})
    assert got == Outer(inner=Inner(k=2, names=("a",)), byname={"x": Entry(params={"p": 1.0}), "y": Entry()}, rate=1.0)
    assert got.inner.names == ("a",) and isinstance(got.rate, float)
    assert yaml_config.load(Outer, defaults, Bad, "cfg") == yaml_config.load(Outer, defaults, Bad, "cfg", defaults)
    with pytest.raises(Exception, match="frozen"):
        got.rate = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("user_text", "overrides", "message"),
    [
        ("inner: {kk: 2}\n", None, "user.yaml: unknown key 'inner.kk' (known: k, names)"),
        ("byname: {x: {parms: {}}}\n", None, "user.yaml: unknown key 'byname.x.parms' (known: params)"),
        ("extra: 1\n", None, "user.yaml: unknown key 'extra' (known: inner, byname, rate)"),
        ("", {"inner": {"zz": 1}}, "overrides: unknown key 'inner.zz'"),
        ("rate: fast\n", None, "user.yaml: rate: Input should be a valid number"),
        ("rate: fast\n", {"rate": "slow"}, "overrides: rate: Input should be a valid number"),
        ("inner: [1]\n", None, "user.yaml: inner: Input should be a valid dictionary"),
    ],
)
def test_problems_name_the_file_and_the_key(defaults, tmp_path, user_text, overrides, message):
    user = tmp_path / "user.yaml"
    user.write_text(user_text)
    with pytest.raises(Bad) as err:
        yaml_config.load(Outer, defaults, Bad, "cfg", user, overrides)
    assert str(err.value).startswith("invalid cfg: ") and message in str(err.value), str(err.value)


def test_a_key_missing_from_the_defaults_names_the_defaults_file(tmp_path):
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("inner: {names: []}\nbyname: {}\n")
    with pytest.raises(Bad) as err:
        yaml_config.load(Outer, defaults, Bad, "cfg")
    assert "defaults.yaml: missing key 'inner.k'" in str(err.value)
    assert "defaults.yaml: missing key 'rate'" in str(err.value)


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
    assert yaml_config.merge(base, {"a": None}) == base  # an empty section keeps the defaults
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}  # not modified
    with pytest.raises(Bad, match="key.path=value"):
        yaml_config.parse_assignments(["novalue"], Bad)
    with pytest.raises(Bad, match="already set to a value"):
        yaml_config.parse_assignments(["a=1", "a.b=2"], Bad)


@pytest.mark.parametrize("package", ["training", "monitoring", "batch"])
def test_package_configs_load_their_defaults_and_refuse_unknown_keys(package, tmp_path):
    import importlib

    config = importlib.import_module(f"{package}.config")
    loaded = config.load_config()
    assert loaded.as_dict()["model_name"] == "churn"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_nmae: churn\n")
    with pytest.raises(RuntimeError) as err:
        config.load_config(bad)
    assert "bad.yaml: unknown key 'model_nmae'" in str(err.value)


def test_no_package_config_model_repeats_its_yaml_defaults():
    """Defaults have one home, the package's config.yaml: the models declare none, except the
    empty parts of a named entry (training's models.<name>)."""
    from batch.config import BatchConfig
    from monitoring.config import MonitoringConfig
    from training.config import ModelConfig, TrainingConfig

    def sections(model):
        yield model
        for field in model.model_fields.values():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, ConfigModel):
                yield from sections(annotation)

    for top in (TrainingConfig, MonitoringConfig, BatchConfig):
        for model in sections(top):
            with_default = [n for n, f in model.model_fields.items() if not f.is_required()]
            assert with_default == [], f"{model.__name__} repeats defaults for {with_default}"
    assert all(f.default_factory is dict for f in ModelConfig.model_fields.values())


"""serving.config: serving/config.yaml through the platform's typed loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.config import DEFAULT_CONFIG, ServingConfigError, load_config


def test_the_shipped_file_loads_and_the_environment_adds_keys():
    config = load_config(None, {"PARITY_API_KEYS": " k1 ,k2,k1", "PARITY_SERVE_PORT": "9001"})
    assert config.api_keys == ("k1", "k2")
    assert config.port == 9001
    assert config.canary_version is None and config.canary_share == 0.0


def test_a_user_file_only_says_what_differs(tmp_path: Path):
    user = tmp_path / "serving.yaml"
    user.write_text("top_k: 3\ncanary: {version: v0002, share: 0.1}\n")
    config = load_config(user, {})
    assert (config.top_k, config.canary_version, config.canary_share) == (3, "v0002", 0.1)
    assert config.model == load_config(None, {}).model


@pytest.mark.parametrize("text, named", [
    ("max_customer: 10\n", "max_customer"),          # a typo is refused, not silently dropped
    ("port: eighty\n", "port"),
    ("canary: {version: v0002, shares: 0.1}\n", "canary.shares"),
    ("log_sync: sometimes\n", "log_sync"),
    ("canary: {version: v0002, share: 2}\n", "canary.share"),
])
def test_bad_keys_and_values_are_refused_naming_file_and_key(tmp_path: Path, text: str, named: str):
    user = tmp_path / "serving.yaml"
    user.write_text(text)
    with pytest.raises(ServingConfigError) as err:
        load_config(user, {})
    assert named in str(err.value) and str(user) in str(err.value)


def test_every_default_lives_in_the_yaml():
    assert DEFAULT_CONFIG.name == "config.yaml"
    from serving.config import ServingConfig
    assert all(field.is_required() for field in ServingConfig.model_fields.values())

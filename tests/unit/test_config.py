"""Distribution loading: env substitution forms, disabling, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from vistack.api import Api, ConfigError
from vistack.config import load_distribution, packaged_distributions, parse_distribution
from vistack.envsubst import substitute


def test_plain_reference_uses_value():
    assert substitute("${env.A}", {"A": "x"}) == "x"
    assert substitute("pre-${env.A}-post", {"A": "x"}) == "pre-x-post"


def test_plain_reference_unset_names_variable_and_path():
    with pytest.raises(ConfigError) as e:
        substitute({"providers": {"url": "${env.VLLM_URL}"}}, {}, where="f.yaml")
    msg = str(e.value)
    assert "VLLM_URL" in msg and "f.yaml" in msg and "providers.url" in msg


def test_default_form():
    assert substitute("${env.A:=fallback}", {}) == "fallback"
    assert substitute("${env.A:=fallback}", {"A": ""}) == "fallback"
    assert substitute("${env.A:=fallback}", {"A": "set"}) == "set"
    assert substitute("${env.HOME_DIR:=~/.vistack}/local", {}) == "~/.vistack/local"


def test_conditional_form():
    assert substitute("${env.A:+on}", {"A": "1"}) == "on"
    assert substitute("${env.A:+on}", {}) is None
    assert substitute("${env.A:+on}", {"A": ""}) is None


def test_nested_default_inside_conditional():
    assert substitute("${env.A:+${env.B:=b}}", {"A": "1"}) == "b"


def test_empty_whole_value_becomes_none_but_partial_stays_string():
    assert substitute("${env.A:=}", {}) is None
    assert substitute("x${env.A:=}", {}) == "x"


def test_non_strings_untouched():
    assert substitute({"a": [1, True, None]}, {}) == {"a": [1, True, None]}


def _dist(**overrides):
    base = {
        "version": 2,
        "distro_name": "t",
        "apis": ["inference"],
        "providers": {
            "inference": [
                {"provider_id": "${env.ENABLE_VLLM:+vllm}", "provider_type": "remote::vllm", "config": {"url": "http://x"}},
                {"provider_id": "st", "provider_type": "inline::sentence-transformers"},
            ]
        },
        "models": [
            {"model_id": "m", "provider_id": "${env.ENABLE_VLLM:+vllm}"},
            {"model_id": "e", "provider_id": "st", "model_type": "embedding"},
        ],
        "storage": {"state_dir": "${env.VISTACK_HOME:=/tmp/vs}/t"},
    }
    base.update(overrides)
    return base


def test_provider_with_empty_id_is_disabled_with_its_models():
    cfg = parse_distribution(_dist(), env={})
    ids = [p.provider_id for _, p in cfg.provider_entries()]
    assert ids == ["st"]
    assert [m.model_id for m in cfg.models] == ["e"]
    assert cfg.providers[Api.inference][0].config == {}


def test_provider_enabled_by_env():
    cfg = parse_distribution(_dist(), env={"ENABLE_VLLM": "1"})
    assert [p.provider_id for _, p in cfg.provider_entries()] == ["vllm", "st"]
    assert cfg.storage.state_dir == Path("/tmp/vs/t")


def test_unknown_model_provider_names_key_path():
    d = _dist(models=[{"model_id": "m", "provider_id": "nope"}])
    with pytest.raises(ConfigError) as e:
        parse_distribution(d, where="my.yaml", env={})
    msg = str(e.value)
    assert "my.yaml" in msg and "models[0].provider_id" in msg and "nope" in msg and "st" in msg


def test_wrong_type_names_key_path_and_expectation():
    d = _dist(server={"port": "not-a-port"})
    with pytest.raises(ConfigError) as e:
        parse_distribution(d, where="my.yaml", env={})
    msg = str(e.value)
    assert "server.port" in msg and "integer" in msg and "not-a-port" in msg


def test_unknown_key_rejected():
    d = _dist(servr={"port": 1})
    with pytest.raises(ConfigError) as e:
        parse_distribution(d, where="my.yaml", env={})
    assert "servr" in str(e.value) and "Extra inputs are not permitted" in str(e.value)


def test_bad_provider_type_and_api():
    d = _dist(providers={"inference": [{"provider_id": "x", "provider_type": "transformers"}]}, models=[])
    with pytest.raises(ConfigError) as e:
        parse_distribution(d, env={})
    assert "providers.inference[0].provider_type" in str(e.value)
    d = _dist(providers={"telepathy": []}, models=[])
    with pytest.raises(ConfigError) as e:
        parse_distribution(d, env={})
    assert "telepathy" in str(e.value)


def test_duplicate_provider_id():
    d = _dist(providers={"inference": [
        {"provider_id": "a", "provider_type": "remote::vllm"},
        {"provider_id": "a", "provider_type": "remote::ollama"},
    ]}, models=[])
    with pytest.raises(ConfigError, match="duplicate provider_id 'a'"):
        parse_distribution(d, env={})


def test_invalid_yaml_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("version: 2\nproviders: [\n")
    with pytest.raises(ConfigError) as e:
        load_distribution(p)
    assert str(p) in str(e.value) and "YAML" in str(e.value)


def test_missing_file_and_unknown_name():
    with pytest.raises(ConfigError, match="does not exist"):
        load_distribution("/nonexistent/x.yaml")
    with pytest.raises(ConfigError, match="unknown distribution 'nope'.*local"):
        load_distribution("nope")


def test_packaged_distributions_load(monkeypatch, tmp_path):
    names = packaged_distributions()
    assert {"local", "remote-vllm"} <= set(names)
    monkeypatch.setenv("VISTACK_HOME", str(tmp_path))
    local = load_distribution("local")
    assert local.server.port == 8321
    assert local.storage.state_dir == tmp_path / "local"
    vision = local.models[0]
    assert vision.provider_model_id == "meta-llama/Llama-3.2-11B-Vision-Instruct"
    monkeypatch.setenv("VISTACK_VISION_MODEL", "/models/tiny")
    assert load_distribution("local").models[0].provider_model_id == "/models/tiny"
    monkeypatch.delenv("VLLM_URL", raising=False)
    with pytest.raises(ConfigError, match="VLLM_URL"):
        load_distribution("remote-vllm")
    monkeypatch.setenv("VLLM_URL", "http://127.0.0.1:8000/v1")
    with pytest.raises(ConfigError, match="CHROMA_URL"):
        load_distribution("remote-vllm")
    monkeypatch.setenv("CHROMA_URL", "http://127.0.0.1:8000")
    assert load_distribution("remote-vllm").providers[Api.inference][0].config["url"] == "http://127.0.0.1:8000/v1"

"""``vistack distributions`` and configuration errors from ``vistack serve``."""

from __future__ import annotations

import pytest

from vistack import cli
from vistack.cli import main


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli.console, "width", 200)
    monkeypatch.setattr(cli.err_console, "width", 200)


def test_distributions_list(capsys):
    assert main(["distributions", "list"]) == 0
    out = capsys.readouterr().out
    assert "local" in out and "remote-vllm" in out and "inline::transformers" in out


def test_distributions_show_raw_and_resolved(capsys, monkeypatch, tmp_path):
    assert main(["distributions", "show", "local"]) == 0
    assert "${env.VISTACK_VISION_MODEL" in capsys.readouterr().out
    monkeypatch.setenv("VISTACK_HOME", str(tmp_path))
    assert main(["distributions", "show", "local", "--resolved"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "local") in out and "${env" not in out


def test_unknown_distribution_is_a_config_error(capsys):
    assert main(["distributions", "show", "nope"]) == 2
    assert "unknown distribution 'nope'" in capsys.readouterr().err


def test_serve_with_invalid_file_fails_before_listening(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\ndistro_name: x\napis: [inference]\nstorage: {state_dir: /tmp/x}\nserver: {port: -1}\n")
    assert main(["serve", "--distribution", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "server.port" in err

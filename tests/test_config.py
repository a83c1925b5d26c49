"""Config layering: defaults, then the user's YAML, then flags; unknown keys are errors."""

import pytest

from twbert import config
from twbert.errors import UsageError


def test_user_yaml_overrides_defaults_and_flags_override_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("executor:\n  tasks: 7\n  workers: 3\nout: /x\n", encoding="utf-8")
    cfg = config.load("build", path, {"executor": {"workers": 1}})
    assert cfg["executor"]["tasks"] == 7
    assert cfg["executor"]["workers"] == 1
    assert cfg["out"] == "/x"
    assert cfg["executor"]["type"] == config.defaults("build")["executor"]["type"]


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("executor:\n  taks: 7\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"c\.yaml.*executor\.taks"):
        config.load("build", path)


def test_open_sections_take_any_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("executor:\n  slurm:\n    partition: cpu\n    qos: high\n", encoding="utf-8")
    assert config.load("build", path)["executor"]["slurm"] == {"partition": "cpu", "qos": "high"}


def test_missing_and_malformed_files_are_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        config.load("build", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="bad.yaml: not valid YAML"):
        config.load("build", bad)

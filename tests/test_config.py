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


# Typed configs: every key has a type (derived from its documented default, or twbert/schema.py's
# EXPLICIT table), checked through the real CLI before any task starts.

def _leaves(d, p=""):
    for k, v in d.items():
        w = f"{p}.{k}" if p else k
        if isinstance(v, dict) and v:
            yield from _leaves(v, w)
        else:
            yield w, v


@pytest.mark.parametrize("kind", ["build", "train"])
def test_every_default_key_has_a_type(kind):
    # A key added to the defaults with a null or empty default needs an entry in schema.EXPLICIT.
    untyped = list(config.schema(kind).untyped(""))
    assert not untyped, f"give these {kind} keys a type in twbert/schema.py EXPLICIT: {untyped}"
    from twbert import schema

    assert not schema.stale(kind, config.defaults(kind)), "EXPLICIT names keys the defaults no longer have"
    # The documented defaults fit their own types.
    config.schema(kind).check(config.defaults(kind), "", f"defaults/{kind}.yaml")
    assert len(list(_leaves(config.defaults(kind)))) > 20


def _cli(tmp_path, capsys, kind, text):
    from twbert.cli import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text, encoding="utf-8")
    rc = main([kind, str(cfg)])
    return rc, capsys.readouterr().err


BUILD_HEAD = "inputs:\n  wiki: [{wiki}]\nout: {out}\n"


@pytest.fixture
def wiki_dump(tmp_path):
    from twbert import sample

    return sample.write(tmp_path / "sample", n_generated_pages=2, n_web=2)["wiki"]


@pytest.mark.parametrize("body, key, value, expected", [
    ("dedup:\n  enabled: \"false\"\n", "dedup.enabled", '"false" (a string)', "a boolean"),
    ("executor:\n  tasks: true\n", "executor.tasks", "True (a boolean)", "an integer >= 1"),
    ("executor:\n  tasks: 2.5\n", "executor.tasks", "2.5 (a number)", "an integer"),
    ("executor:\n  type: dask\n", "executor.type", '"dask" (a string)', "one of local, slurm, ray"),
    ("dedup:\n  threshold: 1.5\n", "dedup.threshold", "1.5 (a number)", "a number in [0, 1]"),
    ("quality:\n  top_n_grams: [[2, x]]\n", "quality.top_n_grams[0][1]", '"x" (a string)', "a number"),
    ("pii:\n  kinds: email\n", "pii.kinds", '"email" (a string)', "a list, each one of email, ip, phone, id"),
])
def test_build_rejects_a_wrong_type_before_any_task(tmp_path, capsys, wiki_dump, body, key, value, expected):
    out = tmp_path / "out"
    rc, err = _cli(tmp_path, capsys, "build", BUILD_HEAD.format(wiki=wiki_dump, out=out) + body)
    assert rc == 2, err
    assert f"cfg.yaml: config key '{key}' is {value}; expected {expected}" in err, err
    assert not (out / "logs").exists()  # nothing ran


def test_a_string_is_not_a_list_of_inputs(tmp_path, capsys):
    # `inputs.wiki: S0` used to be read letter by letter.
    rc, err = _cli(tmp_path, capsys, "build", f"inputs:\n  wiki: S0\nout: {tmp_path / 'out'}\n")
    assert rc == 2
    assert "config key 'inputs.wiki' is \"S0\" (a string); expected a list, each a string" in err


def test_floats_accept_ints_and_nullable_keys_accept_null(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1\n  grad_clip: null\ncheckpoint:\n  keep: null\n", encoding="utf-8")
    cfg = config.load("train", path)
    assert cfg["optim"]["lr"] == 1 and cfg["optim"]["grad_clip"] is None


@pytest.mark.parametrize("body, key, value, expected", [
    ("optim:\n  lr: 1e-4\n", "optim.lr", '"1e-4" (a string)', "a number >= 0 (YAML reads 1e-4 as a string"),
    ("train:\n  compile: \"no\"\n", "train.compile", '"no" (a string)', "a boolean"),
    ("data:\n  masking:\n    replace_probs: [0.8, 0.2]\n", "data.masking.replace_probs", "[0.8, 0.2] (a list)",
     "a list of 3 items, each a number in [0, 1]"),
    ("data:\n  weights: {wiki-tw: high}\n", "data.weights.wiki-tw", '"high" (a string)', "a number >= 0"),
    ("checkpoint:\n  keep: 0\n", "checkpoint.keep", "0 (an integer)", "an integer >= 1, or null"),
])
def test_train_rejects_a_wrong_type(tmp_path, capsys, body, key, value, expected):
    rc, err = _cli(tmp_path, capsys, "train", f"data_dir: {tmp_path}\nout: {tmp_path / 'run'}\n" + body)
    assert rc == 2, err
    assert f"cfg.yaml: config key '{key}' is {value}; expected {expected}" in err, err
    assert not (tmp_path / "run").exists()


def test_flags_are_checked_too(tmp_path, capsys):
    from twbert.cli import main

    assert main(["build", "--wiki", "x", "--out", str(tmp_path), "--tasks", "0"]) == 2
    assert "command line: config key 'executor.tasks' is 0 (an integer); expected an integer >= 1" in capsys.readouterr().err


def test_a_section_left_empty_keeps_its_defaults(tmp_path):
    # `dedup:` with every key under it commented out is null in YAML: not a replacement of the section.
    path = tmp_path / "c.yaml"
    path.write_text("dedup:\n#  enabled: false\n", encoding="utf-8")
    assert config.load("build", path)["dedup"] == config.defaults("build")["dedup"]
    path.write_text("dedup: false\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"config key 'dedup' is False \(a boolean\); expected a mapping"):
        config.load("build", path)


def test_the_loader_checks_a_data_section_given_in_code():
    # MLMLoader is also built from Python (notebooks, tests), not only from `twbert train`.
    from twbert.training.loader import data_config

    with pytest.raises(UsageError, match=r"config key 'data.shuffle' is \"yes\" \(a string\); expected a boolean"):
        data_config({"shuffle": "yes"})
    assert data_config({"max_len": 512})["max_len"] == 512

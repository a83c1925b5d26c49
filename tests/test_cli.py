"""The CLI's one-line error: the datatrove log hint only for commands that run datatrove."""

from twbert.cli import build_parser, main


def test_train_error_does_not_point_at_datatrove_logs(tmp_path, capsys):
    # A shards dir whose tokenizer.json is broken fails inside the trainer with a library error.
    shards = tmp_path / "shards"
    (shards / "tokenizer").mkdir(parents=True)
    (shards / "tokenizer" / "tokenizer.json").write_text("{", encoding="utf-8")
    (shards / "meta.json").write_text('{"format": 1}', encoding="utf-8")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"data_dir: {shards}\nout: {tmp_path / 'run'}\ntrain:\n  device: cpu\n", encoding="utf-8")
    rc = main(["train", str(cfg)])
    err = capsys.readouterr().err
    assert rc in (1, 2) and "twbert train: error:" in err
    assert "OUT/logs" not in err and "datatrove" not in err, err


def test_inspect_error_does_not_point_at_datatrove_logs(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "documents").mkdir(parents=True)
    (run / "shards" / "a").mkdir(parents=True)
    (run / "stats.json").write_text('{"funnel": [], "stages": {}}', encoding="utf-8")
    (run / "shards" / "a" / "index.json").write_text('{"shards": [], "version": 2}', encoding="utf-8")
    (run / "shards" / "meta.json").write_text("{", encoding="utf-8")
    rc = main(["inspect", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert rc in (1, 2) and "twbert inspect: error:" in err
    assert "OUT/logs" not in err and "datatrove" not in err, err


def test_only_datatrove_commands_name_their_task_logs():
    parser = build_parser()
    assert parser.parse_args(["build"]).task_logs == "OUT/logs/"
    assert parser.parse_args(["dedup", "against", "I", "N"]).task_logs
    for argv in (["train", "c.yaml"], ["inspect", "d"], ["export"]):
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            continue
        assert getattr(args, "task_logs", None) is None, argv

"""`twbert finetune` end to end on CPU: a tiny twbert export fine-tuned for a few steps on tiny slices
written here in the tasks' real formats; the loss falls and results.json and predictions are written."""

from __future__ import annotations

import json

import pytest
from _finetune_data import chnsenticorp_tsv, qa_articles, tiny_export, write_json

from twbert.cli import main
from twbert.finetune import scoring
from twbert.finetune.convert import converter

pytest.importorskip("transformers")
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # real fine-tuning runs

FAST = ["--lr", "3e-3", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_export(tmp_path_factory.mktemp("model"))


def losses(out, seed=0):
    return [json.loads(line)["loss"] for line in (out / "seeds" / f"seed{seed}" / "losses.jsonl").open()]


def test_drcd_end_to_end(model, tmp_path, capsys):
    train = write_json(tmp_path / "train.json", qa_articles(40))
    dev = write_json(tmp_path / "dev.json", qa_articles(8, seed=1))
    out = tmp_path / "out"
    # 40 tokens leave ~25 for the context: every context is read in several windows
    assert main(["finetune", "drcd", str(model), "--train", str(train), "--dev", str(dev), "--out", str(out),
                 "--max-steps", "30", "--batch-size", "16", "--max-length", "40", "--doc-stride", "8", *FAST]) == 0
    printed = json.loads(capsys.readouterr().out)
    res = json.loads((out / "results.json").read_text())
    assert printed["mean"] == res["mean"]
    assert {"task", "model", "opencc", "seeds", "mean", "max"} <= set(res)
    assert res["task"] == "drcd" and res["opencc"] == "s2twp" and len(res["seeds"]) == 1
    seed = res["seeds"][0]
    assert seed["seed"] == 0 and {"em", "f1", "total", "skip"} <= set(seed["dev"])
    assert seed["train"]["windows"] > seed["train"]["questions"] == 80  # strided windows
    assert seed["train"]["train_answers_outside_every_window"] == 0
    # OpenCC moved the answers (the Simplified filler before them changes length) and all re-aligned
    assert res["data"]["train"]["unaligned_answers"] == 0 and res["data"]["dev"]["answers"] == 16
    ls = losses(out)
    assert len(ls) == 30 and sum(ls[-5:]) / 5 < 0.6 * sum(ls[:5]) / 5

    preds = json.loads((out / "predictions" / "dev_seed0.json").read_text())
    dev_ids = {qa["id"] for p in json.loads(dev.read_text())["data"][0]["paragraphs"] for qa in p["qas"]}
    assert set(preds) == dev_ids
    # Each prediction is a span of the converted context; the score is the official scorer's on converted gold.
    cc = converter("s2twp")
    gold = {qa["id"]: [cc(a["text"]) for a in qa["answers"]] for p in json.loads(dev.read_text())["data"][0]["paragraphs"]
            for qa in p["qas"]}
    contexts = {qa["id"]: cc(p["context"]) for p in json.loads(dev.read_text())["data"][0]["paragraphs"] for qa in p["qas"]}
    assert all(preds[q] in contexts[q] for q in preds)
    assert any(len(cc(p["context"])) != len(p["context"]) for p in json.loads(dev.read_text())["data"][0]["paragraphs"])
    assert scoring.score_qa(gold, preds) == pytest.approx({k: seed["dev"][k] for k in ("em", "f1", "total", "skip")})
    capsys.readouterr()
    assert main(["eval", "qa", str(out / "gold" / "dev.json"), str(out / "predictions" / "dev_seed0.json")]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx({k: seed["dev"][k] for k in ("em", "f1", "total", "skip")})
    assert seed["dev"]["total"] == 16 and seed["dev"]["skip"] == 0


def test_seeds_resume_and_summary(model, tmp_path):
    train = write_json(tmp_path / "train.json", qa_articles(12))
    dev = write_json(tmp_path / "dev.json", qa_articles(4, seed=1))
    out = tmp_path / "out"
    args = ["finetune", "span-qa", str(model), "--train", str(train), "--dev", str(dev), "--test", str(dev),
            "--out", str(out), "--max-steps", "3", "--batch-size", "8", "--max-length", "64", *FAST]
    assert main(args) == 0
    first = (out / "seeds" / "seed0" / "result.json").read_text()
    assert main(args + ["--seeds", "2"]) == 0
    assert (out / "seeds" / "seed0" / "result.json").read_text() == first  # kept, not retrained
    res = json.loads((out / "results.json").read_text())
    assert [s["seed"] for s in res["seeds"]] == [0, 1]
    for split in ("dev", "test"):
        values = [s[split]["f1"] for s in res["seeds"]]
        assert res["max"][split]["f1"] == max(values)
        assert res["mean"][split]["f1"] == pytest.approx(sum(values) / 2)
    assert (out / "predictions" / "test_seed1.json").is_file()
    # same seed, fresh directory: the same losses, bit for bit (CPU)
    again = tmp_path / "again"
    assert main([a if a != str(out) else str(again) for a in args]) == 0
    assert (again / "seeds" / "seed0" / "losses.jsonl").read_bytes() == (out / "seeds" / "seed0" / "losses.jsonl").read_bytes()
    assert (again / "predictions" / "dev_seed0.json").read_bytes() == (out / "predictions" / "dev_seed0.json").read_bytes()


def test_no_stride_reads_one_window_and_counts_cut_contexts(model, tmp_path):
    train = write_json(tmp_path / "train.json", qa_articles(6))
    dev = write_json(tmp_path / "dev.json", qa_articles(4, seed=1))
    out = tmp_path / "out"
    assert main(["finetune", "drcd", str(model), "--train", str(train), "--dev", str(dev), "--out", str(out),
                 "--max-steps", "2", "--batch-size", "4", "--max-length", "30", "--no-stride", *FAST]) == 0
    res = json.loads((out / "results.json").read_text())
    seed = res["seeds"][0]
    assert seed["train"]["windows"] == seed["train"]["questions"] == 12
    assert seed["dev"]["contexts_cut"] == 8 and res["protocol"]["stride"] is False
    assert len(json.loads((out / "predictions" / "dev_seed0.json").read_text())) == 8


def test_chnsenticorp_end_to_end_and_table(model, tmp_path, capsys):
    (tmp_path / "train.tsv").write_text(chnsenticorp_tsv(64), encoding="utf-8")
    (tmp_path / "dev.tsv").write_text(chnsenticorp_tsv(16, seed=1), encoding="utf-8")
    out = tmp_path / "csc"
    assert main(["finetune", "chnsenticorp", str(model), "--train", str(tmp_path / "train.tsv"),
                 "--dev", str(tmp_path / "dev.tsv"), "--out", str(out), "--max-steps", "25", "--batch-size", "16",
                 *FAST]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["labels"] == ["0", "1"]
    dev = res["seeds"][0]["dev"]
    assert dev["total"] == 16 and 0 <= dev["accuracy"] <= 100 and "macro_f1" in dev
    ls = losses(out)
    assert sum(ls[-5:]) / 5 < 0.6 * sum(ls[:5]) / 5
    preds = json.loads((out / "predictions" / "dev_seed0.json").read_text())
    assert len(preds) == 16 and set(preds) <= {"0", "1"}
    capsys.readouterr()

    md = tmp_path / "table.md"
    assert main(["finetune", "table", str(out), "--markdown", str(md)]) == 0
    text = capsys.readouterr().out
    assert "chnsenticorp dev" in text and "/hf" in text
    assert "BERT-wwm (HFL)" in text and "95.1 (94.5)" in text  # HFL's ChnSentiCorp dev figure
    assert "ymcui/Chinese-BERT-wwm @ f6410cbd" in text
    assert md.read_text().startswith("| model | chnsenticorp dev |\n")


def test_bad_input_is_a_clear_error(model, tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("1\t好\n0\t壞\n", encoding="utf-8")  # no header line
    assert main(["finetune", "chnsenticorp", str(model), "--train", str(tmp_path / "train.tsv"),
                 "--dev", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "train.tsv:1" in err and "label<TAB>text_a" in err
    assert main(["finetune", "drcd", str(model), "--train", "x"]) == 2
    assert "--dev and --out required" in capsys.readouterr().err
    assert main(["finetune", "drcd", str(tmp_path), "--train", "x", "--dev", "x", "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_bert_style_baseline_with_segment_ids(model, tmp_path):
    """Any HF encoder works: a tiny BERT (which takes token type ids) on span QA and on pairs."""
    import transformers

    from twbert.finetune.run import takes_token_types

    tok = transformers.AutoTokenizer.from_pretrained(str(model))
    bert = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
        max_position_embeddings=128, pad_token_id=0))
    bert.save_pretrained(str(tmp_path / "bert"))
    tok.save_pretrained(str(tmp_path / "bert"))
    assert takes_token_types(transformers.BertForQuestionAnswering(bert.config))
    assert not takes_token_types(transformers.ModernBertForQuestionAnswering.from_pretrained(str(model)))
    train = write_json(tmp_path / "train.json", qa_articles(6))
    out = tmp_path / "out"
    assert main(["finetune", "cmrc2018", str(tmp_path / "bert"), "--train", str(train), "--dev", str(train),
                 "--out", str(out), "--max-steps", "2", "--batch-size", "4", "--max-length", "128", *FAST]) == 0
    assert len(json.loads((out / "predictions" / "dev_seed0.json").read_text())) == 12
    (tmp_path / "p.tsv").write_text("甲很好\t乙很好\t1\n甲很好\t乙很差\t0\n", encoding="utf-8")
    assert main(["finetune", "lcqmc", str(tmp_path / "bert"), "--train", str(tmp_path / "p.tsv"),
                 "--dev", str(tmp_path / "p.tsv"), "--out", str(tmp_path / "pairs"), "--max-steps", "2", *FAST]) == 0
    assert json.loads((tmp_path / "pairs" / "results.json").read_text())["seeds"][0]["dev"]["total"] == 2

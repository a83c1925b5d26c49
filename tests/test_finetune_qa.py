"""Span QA: BERT's doc-stride windows, the n-best search, and the DRCD round trip (every gold answer
through OpenCC, re-alignment, tokenisation and strided windows back to its exact text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _models import char_tokenizer

from twbert.finetune import convert, qa, tasks

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository (a worktree one level deeper looks one level further up).
DRCD = next((p / "shared" / "data" / "drcd_test.json" for p in ROOT.parents[:2]
             if (p / "shared" / "data" / "drcd_test.json").is_file()), ROOT.parent / "shared" / "data" / "drcd_test.json")


def test_windows_follow_berts_doc_stride():
    assert qa.windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert qa.windows(10, 4, 8) == [(0, 4), (4, 4), (8, 2)]  # never a step longer than the window
    assert qa.windows(3, 8, 2) == [(0, 3)]
    assert qa.windows(10, 4, None) == [(0, 4)]


def test_token_span():
    offsets = [(0, 2), (2, 3), (3, 3), (3, 6)]
    assert qa.token_span(offsets, 2, 3) == (1, 1)
    assert qa.token_span(offsets, 1, 4) == (0, 3)
    assert qa.token_span(offsets, 6, 7) is None


@pytest.fixture
def tok(tmp_path):
    return char_tokenizer(tmp_path / "tok", ["臺北是中華民國的首都，人口很多。首都在哪裡？"])


def test_features_put_the_answer_in_every_window_that_holds_it(tok):
    context = "臺北是中華民國的首都，人口很多。"
    ex = tasks.QAExample("q", "首都在哪裡？", context, [("中華民國", 3)])
    feats = qa.make_features([ex], tok, max_length=16, doc_stride=3, train=True)
    room = 16 - len("首都在哪裡？") - 3
    assert len(feats.features) == len(qa.windows(len(context), room, 3)) > 1
    labelled = [f for f in feats.features if f.start_position]
    assert labelled and all(tok.convert_ids_to_tokens(f.input_ids[f.start_position:f.end_position + 1]) == list("中華民國")
                            for f in labelled)
    unlabelled = [f for f in feats.features if not f.start_position]
    assert all(f.end_position == 0 for f in unlabelled)  # [CLS]: the answer is not (whole) in this window
    for f in feats.features:
        assert f.input_ids[0] == tok.cls_token_id and f.input_ids[f.context_offset - 1] == tok.sep_token_id
        assert len(f.input_ids) <= 16 and f.token_type_ids == []
    typed = qa.make_features([ex], tok, max_length=16, doc_stride=3, typed=True).features[0]
    assert typed.token_type_ids == [0] * typed.context_offset + [1] * (len(typed.input_ids) - typed.context_offset)
    # each context token is "max context" in exactly one window
    for pos in range(len(context)):
        owners = [f for f in feats.features if any(s == pos for (s, _e), m in zip(f.offsets, f.max_context) if m)]
        assert len(owners) == 1


def test_best_answer_over_windows_with_max_answer_length(tok):
    context = "臺北是中華民國的首都，人口很多。"
    ex = tasks.QAExample("q", "首都在哪裡？", context, [])
    feats = qa.make_features([ex], tok, max_length=16, doc_stride=3).features

    def logits(start_char, end_char, strength):
        s_all, e_all = [], []
        for f in feats:
            s = [0.0] * len(f.input_ids)
            e = [0.0] * len(f.input_ids)
            for i, (a, b) in enumerate(f.offsets):
                if a == start_char:
                    s[f.context_offset + i] = strength
                if b == end_char:
                    e[f.context_offset + i] = strength
            s_all.append(s)
            e_all.append(e)
        return s_all, e_all

    s, e = logits(3, 7, 5.0)
    assert qa.best_answers([ex], feats, s, e) == {"q": "中華民國"}
    # An answer longer than max_answer_length tokens is not allowed: something shorter wins.
    feats = qa.make_features([ex], tok, max_length=40, doc_stride=3).features  # one window
    s, e = logits(0, 15, 5.0)
    assert qa.best_answers([ex], feats, s, e, max_answer_length=30) == {"q": "臺北是中華民國的首都，人口很多"}
    assert len(qa.best_answers([ex], feats, s, e, max_answer_length=4)["q"]) <= 4


@pytest.fixture(scope="module")
def drcd():
    if not DRCD.is_file():
        pytest.skip(f"{DRCD} not present (the DRCD test set, see ../shared/data/README.md)")
    read = tasks.read("drcd", DRCD)
    examples, unaligned = convert.convert_qa(read.examples, convert.converter("s2twp"))
    return read, examples, unaligned


def check_failures(report, examples):
    """Every answer is exact or listed; every listed one is explained by what the tokens give."""
    assert report["answers"] == sum(len(e.answers) for e in examples)
    assert report["exact"] + report["unaligned_before_tokenisation"] + len(report["failures"]) == report["answers"]
    assert report["outside_every_window"] == 0
    for f in report["failures"]:
        assert f["reason"] == "an answer edge falls inside a token"
        assert f["answer"] in f["tokens_give"] and f["answer"] != f["tokens_give"]


@pytest.mark.slow
def test_drcd_round_trip_wordpiece(drcd, tmp_path):
    """A BERT-Chinese-style WordPiece (one token per CJK character): all but a few answers come back exactly."""
    from transformers import BertTokenizerFast

    read, examples, unaligned = drcd
    assert read.read == 3493 and not read.dropped
    assert unaligned == []  # OpenCC s2twp: every answer re-aligned (131 moved)
    chars = sorted({c for e in examples for c in e.context + e.question if not c.isspace()})
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                                        encoding="utf-8")
    wp = BertTokenizerFast(str(tmp_path / "vocab.txt"), do_lower_case=False)
    report = qa.span_round_trip(examples, wp, max_length=512, doc_stride=128)
    check_failures(report, examples)
    # numbers are one WordPiece word ("2000" holds the answer "20"): listed, not silently lost
    assert report["exact"] >= 0.998 * report["answers"]


@pytest.mark.slow
def test_drcd_round_trip_byte_level_bpe(drcd, tmp_path):
    """twbert's byte-level BPE (trained here on a slice of the contexts): answers whose edge falls inside a
    merged token are counted and listed with what the tokens give."""
    from transformers import AutoTokenizer

    from twbert.shards.tokenizer import train

    read, examples, _ = drcd
    contexts = sorted({e.context for e in examples})[:150]
    (tmp_path / "ctx.txt").write_text("\n".join(contexts) + "\n", encoding="utf-8")
    train([tmp_path / "ctx.txt"], 1000, tmp_path / "bpe", show_progress=False)
    bpe = AutoTokenizer.from_pretrained(str(tmp_path / "bpe"))
    subset = [e for e in examples if e.context in set(contexts)]
    report = qa.span_round_trip(subset, bpe, max_length=512, doc_stride=128)
    check_failures(report, subset)
    assert report["exact"] > 0.5 * report["answers"]
    json.dumps(report, ensure_ascii=False)  # the report is what the benchmark prints

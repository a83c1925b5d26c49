"""Tokenizer preparation and training: the saved dir loads in tokenizers and transformers with BERT specials."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _shards_text import documents

from twbert.shards import tokenizer as T

QWEN_RANKS = Path(os.environ.get("TWBERT_QWEN_TIKTOKEN", "/tmp/ds/dashscope/resources/qwen.tiktoken"))


def write_corpus(dirpath: Path) -> Path:
    import gzip

    dirpath.mkdir(parents=True, exist_ok=True)
    for k in range(2):
        with gzip.open(dirpath / f"{k:05d}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for i, text in enumerate(documents(40, seed=k)):
                fh.write(json.dumps({"text": text, "id": f"d{k}-{i}", "metadata": {"source": "web"}}, ensure_ascii=False) + "\n")
    return dirpath


def check_bert_specials(out: Path, text: str) -> dict:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    info = json.loads((out / "twbert_tokenizer.json").read_text())
    assert info["padded_vocab_size"] % 64 == 0 and 0 <= info["padded_vocab_size"] - info["vocab_size"] < 64
    hf = AutoTokenizer.from_pretrained(str(out))
    assert (hf.pad_token, hf.unk_token, hf.cls_token, hf.sep_token, hf.mask_token) == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert hf.pad_token_id == info["pad_token_id"] and hf.mask_token_id == info["mask_token_id"]
    assert len({info[f"{r}_token_id"] for r in ("pad", "unk", "cls", "sep", "mask")}) == 5
    ids = hf(text)["input_ids"]
    assert ids[0] == info["cls_token_id"] and ids[-1] == info["sep_token_id"]
    assert hf.decode(ids, skip_special_tokens=True) == text
    assert hf.convert_tokens_to_ids("[MASK]") == info["mask_token_id"]
    # [MASK] written in text is one token, not pieces
    assert hf("甲[MASK]乙", add_special_tokens=False)["input_ids"].count(info["mask_token_id"]) == 1
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    enc = tok.encode(text)
    assert enc.ids == ids
    plain = tok.encode(text, add_special_tokens=False)
    assert plain.ids == ids[1:-1]
    assert tok.decode(plain.ids) == text
    return info


def test_train_then_load_everywhere(tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    info = T.train([str(corpus)], vocab_size=700, out_dir=tmp_path / "tok", show_progress=False)
    assert info["vocab_size"] == 700
    check_bert_specials(tmp_path / "tok", "夜市的攤販一邊烤香腸。Hello 2024!")
    # learned merges: common words become single tokens, far fewer tokens than UTF-8 bytes
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    text = "早上的捷運車廂裡，大家低頭滑著手機。"
    assert len(tok.encode(text, add_special_tokens=False).ids) < len(text.encode()) / 3


def test_train_is_deterministic_and_reads_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(documents(30, seed=3)), encoding="utf-8")
    T.train([str(tmp_path / "a.txt")], vocab_size=600, out_dir=tmp_path / "t1", show_progress=False)
    T.train([str(tmp_path / "a.txt")], vocab_size=600, out_dir=tmp_path / "t2", show_progress=False)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "twbert_tokenizer.json"):
        assert (tmp_path / "t1" / name).read_bytes() == (tmp_path / "t2" / name).read_bytes(), name


def test_prepare_from_tokenizer_json_and_dir(tmp_path):
    T.train([str(write_corpus(tmp_path / "docs"))], vocab_size=600, out_dir=tmp_path / "tok", show_progress=False)
    # re-preparing an already prepared tokenizer (file or dir) adds nothing and keeps the ids
    a = T.prepare(str(tmp_path / "tok" / "tokenizer.json"), tmp_path / "p1")
    b = T.prepare(str(tmp_path / "tok"), tmp_path / "p2")
    assert a["vocab_size"] == b["vocab_size"] == 600 and a["mask_token_id"] == b["mask_token_id"]
    check_bert_specials(tmp_path / "p2", "她用隨身碟把簡報帶到會議室。")


def test_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        T.train([str(bad)], vocab_size=600, out_dir=tmp_path / "x", show_progress=False)
    with pytest.raises(FileNotFoundError, match="missing"):
        T.prepare(f"tiktoken:{tmp_path / 'missing.tiktoken'}", tmp_path / "y")
    ranks = tmp_path / "r.tiktoken"
    ranks.write_text("IQ== 0\nnot-a-line\n")
    with pytest.raises(ValueError, match=r"r.tiktoken:2"):
        T.prepare(f"tiktoken:{ranks}", tmp_path / "z")


@pytest.mark.skipif(not QWEN_RANKS.is_file(), reason=f"Qwen ranks not at {QWEN_RANKS} (pip download dashscope==2.0.2)")
def test_prepare_qwen_tiktoken(tmp_path):
    info = T.prepare(f"tiktoken:{QWEN_RANKS}", tmp_path / "qwen")
    assert info["vocab_size"] == 151_643 + 5 and info["padded_vocab_size"] == 151_680
    assert info["pad_token_id"] == 151_643
    check_bert_specials(tmp_path / "qwen", "我們在臺北市的大安森林公園散步。Hello world 1234")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "qwen" / "tokenizer.json"))
    # Qwen2 ids for these pieces (digits split one by one by Qwen2's pre-tokenizer)
    assert tok.encode("Hello world 12", add_special_tokens=False).ids == [9707, 1879, 220, 16, 17]


def test_cli_train_and_prepare(tmp_path, capsys):
    from twbert.cli import main

    corpus = write_corpus(tmp_path / "docs")
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "650", "--out", str(tmp_path / "t")]) == 0
    assert main(["tokenizer", "prepare", "--base", str(tmp_path / "t" / "tokenizer.json"), "--out", str(tmp_path / "p")]) == 0
    assert "vocab 650 (padded to 704)" in capsys.readouterr().out
    check_bert_specials(tmp_path / "p", "山上的茶園霧氣很重。")
    # user errors: one line, exit code 2
    assert main(["tokenizer", "prepare", "--base", str(tmp_path / "nope.json"), "--out", str(tmp_path / "q")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_content_encoder_gives_the_tokenizers_ids_and_offsets(tmp_path):
    """The fast path (no NFC normalizer for text already in NFC) encodes exactly as the tokenizer does,
    and text that is not in NFC still goes through the normalizer."""
    import unicodedata

    from tokenizers import Tokenizer

    T.train([str(write_corpus(tmp_path))], vocab_size=600, out_dir=tmp_path / "tok", show_progress=False)
    tok = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    assert tok.normalizer is not None  # NFC, as trained
    encode = T.content_encoder(tok)
    decomposed = "café 臺北 e\u0301 ﬁ Å"  # e + combining acute: not NFC
    assert not unicodedata.is_normalized("NFC", decomposed)
    for text in documents(20, seed=4) + [decomposed, "", " \n ", "Ａ１２３ 全形"]:
        a, b = encode(text), tok.encode(text, add_special_tokens=False)
        assert (a.ids, a.offsets) == (b.ids, b.offsets), text

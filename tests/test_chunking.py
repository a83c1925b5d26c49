"""Sentence-preserving chunking: limits, boundaries, forced splits, tail policies."""

from __future__ import annotations

import numpy as np
import pytest

from twbert.shards.chunking import ChunkStats, chunk, sentence_starts


def one_char_tokens(text):
    """Tokens of one character each, words of two characters: enough to drive the chunker exactly."""
    n = len(text)
    starts = np.arange(n)
    return starts, starts + 1, starts // 2


def run(text, limit, **kw):
    s, e, w = one_char_tokens(text)
    stats = ChunkStats()
    spans = chunk(text, s, e, w, limit, stats=stats, **kw)
    return [text[a:b] for a, b in spans], stats


def test_sentence_starts():
    text = "今天下雨。你有帶傘嗎？「有。」\n好的……走吧"
    cuts = [text[i:j] for i, j in zip(sentence_starts(text), list(sentence_starts(text)[1:]) + [len(text)])]
    assert cuts == ["今天下雨。", "你有帶傘嗎？", "「有。」\n", "好的……", "走吧"]


def test_short_document_is_one_chunk():
    assert run("短短一句。", 100)[0] == ["短短一句。"]
    assert chunk("", np.array([]), np.array([]), np.array([]), 10) == []


def test_cuts_only_between_sentences_and_respects_limit():
    text = "一二三四。五六七八九。甲乙丙。子丑寅卯辰。"
    pieces, stats = run(text, 11, tail="keep")
    assert "".join(pieces) == text
    assert all(len(p) <= 11 for p in pieces)
    assert all(p.endswith("。") for p in pieces)
    assert pieces == ["一二三四。五六七八九。", "甲乙丙。子丑寅卯辰。"]
    assert stats.sentences_split == 0


def test_overlong_sentence_is_split_at_word_boundary_and_counted():
    text = "短句。" + "長" * 25 + "。尾巴在這裡。"
    pieces, stats = run(text, 10, tail="keep")
    assert "".join(pieces) == text
    assert all(len(p) <= 10 for p in pieces)
    assert stats.sentences_split == 1  # one sentence, however many pieces
    s, e, w = one_char_tokens(text)
    spans = chunk(text, s, e, w, 10, tail="keep")
    forced = [a for a, _ in spans[1:] if a not in set(sentence_starts(text))]
    assert forced and all(w[a] != w[a - 1] for a in forced)  # forced cuts fall on word starts


def test_never_cuts_inside_a_shared_character():
    # tokens 3 and 4 share character 3 (a byte-level split character): no chunk may start at token 4
    text = "一二三四五六七八"
    starts = np.array([0, 1, 2, 3, 3, 4, 5, 6, 7])
    ends = np.array([1, 2, 3, 4, 4, 5, 6, 7, 8])
    words = np.arange(9)
    spans = chunk(text, starts, ends, words, 4, tail="keep")
    assert all(a != 4 for a, _ in spans)
    assert all(b - a <= 4 for a, b in spans)


@pytest.mark.parametrize("tail", ["merge", "drop", "keep"])
def test_tail_policies(tail):
    text = "一二三四五六七。八九十一二三四。短。"
    pieces, stats = run(text, 16, tail=tail, min_tail=4)
    if tail == "keep":
        assert pieces == ["一二三四五六七。八九十一二三四。", "短。"]
    elif tail == "drop":
        assert pieces == ["一二三四五六七。八九十一二三四。"]
        assert stats.tails_dropped == 1 and stats.tokens_dropped == 2
    else:  # re-cut at the sentence boundary that balances the last two chunks
        assert pieces == ["一二三四五六七。", "八九十一二三四。短。"]
        assert stats.tails_merged == 1
        assert "".join(pieces) == text


def test_merge_after_forced_split_rebalances_the_tail():
    # one over-long sentence, force-split at 8, leaves a 3-token tail: no sentence boundary can
    # balance it, a word boundary (every 2 characters here) does
    text = "長" * 10 + "。"
    pieces, stats = run(text, 8, tail="merge", min_tail=4)
    assert pieces == ["長" * 6, "長長長長。"]
    assert stats.sentences_split == 1 and stats.tails_merged == 1
    assert run(text, 8, tail="keep", min_tail=4)[0] == ["長" * 8, "長長。"]


def test_bad_arguments():
    s, e, w = one_char_tokens("一二三")
    with pytest.raises(ValueError, match="tail policy"):
        chunk("一二三", s, e, w, 2, tail="fold")
    with pytest.raises(ValueError, match="limit"):
        chunk("一二三", s, e, w, 0)

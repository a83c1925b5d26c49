"""Word segmentation with the Taiwan-form dictionary, and the word -> token mapping."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from _shards_text import SENTENCES

from twbert.shards.segment import BACKENDS, Segmenter, taiwan_dictionary, token_word_ids

INSTALLED = [b for b in BACKENDS if importlib.util.find_spec(b)]


def test_taiwan_dictionary_is_derived_and_deterministic(tmp_path):
    a = taiwan_dictionary(out_dir=tmp_path / "a")
    b = taiwan_dictionary(out_dir=tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    words = {line.split()[0] for line in a.read_text(encoding="utf-8").splitlines()}
    # Traditional characters (s2tw) and Taiwan vocabulary (s2twp) are both there
    assert {"臺灣", "軟體", "隨身碟", "資訊", "網路"} <= words
    assert "软件" not in words  # Simplified forms are converted away


@pytest.fixture(scope="module")
def segmenters():
    return {b: Segmenter(b) for b in INSTALLED}


def test_taiwan_words_are_one_word(segmenters):
    for seg in segmenters.values():
        assert "隨身碟" in seg.cut("她用隨身碟存檔案")
        assert "軟體" in seg.cut("這款軟體很好用")


def test_backends_agree(segmenters):
    if len(segmenters) < 2:
        pytest.skip("only one segmenter backend installed")
    text = "".join(SENTENCES) + " Hello world 2024年"
    cuts = {name: seg.cut(text) for name, seg in segmenters.items()}
    first = next(iter(cuts.values()))
    assert all(c == first for c in cuts.values()), {k: v[:20] for k, v in cuts.items()}


def test_word_starts_cover_the_text(segmenters):
    text = "「今天的湯有點鹹。」爸爸笑著說。\n\n  second line 3.14"
    for seg in segmenters.values():
        starts = seg.word_starts(text)
        words = seg.cut(text)
        assert starts[0] == 0 and np.all(np.diff(starts) > 0)
        assert [text[a:b] for a, b in zip(starts, list(starts[1:]) + [len(text)])] == words


def test_token_word_ids_first_word_wins():
    # words: 臺北市|的|公園 -> starts 0, 3, 4; tokens: 臺北 | 市的 (spans two words) | 公 | 園
    words = np.array([0, 3, 4])
    tokens = np.array([0, 2, 4, 5]), np.array([2, 4, 5, 6])
    assert token_word_ids(words, *tokens).tolist() == [0, 0, 1, 1]
    # a word whose start a token swallowed joins that token's unit: 臺北市 | 的公 | 園 -> 的公園 is one unit
    assert token_word_ids(words, np.array([0, 3, 5]), np.array([3, 5, 6])).tolist() == [0, 1, 1]
    # 臺北 | 市的公 | 園: 的 and 公園 both begin inside a token of 臺北市
    assert token_word_ids(words, np.array([0, 2, 5]), np.array([2, 5, 6])).tolist() == [0, 0, 0]
    assert token_word_ids(words, np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []


def test_token_word_ids_never_start_a_unit_inside_a_character():
    # byte-level BPE: 把程 | 程 | 式 with 程 split over the first two tokens (offsets 3-5, 4-5);
    # words: 工程師|把|程式|上傳 -> starts 0, 3, 4, 6
    words = np.array([0, 3, 4, 6])
    starts, ends = np.array([0, 3, 4, 5, 6]), np.array([3, 5, 5, 6, 8])
    # 程 starts a word at 4, but its bytes began in 把程: 程式 joins 把's unit; 上傳 starts its own
    assert token_word_ids(words, starts, ends).tolist() == [0, 1, 1, 1, 2]


def test_bad_dictionary_names_file_and_line(tmp_path):
    bad = tmp_path / "dict.txt"
    bad.write_text("臺北 10 ns\n壞掉的行\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dict.txt:2"):
        Segmenter(INSTALLED[0], dictionary=str(bad)) if INSTALLED[0] == "rjieba" else taiwan_dictionary(bad, tmp_path)
    with pytest.raises(FileNotFoundError):
        Segmenter("jieba", dictionary=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="backend"):
        Segmenter("pkuseg")


def test_dictionary_loaded_once_per_process_and_again_when_the_file_changes(tmp_path):
    import os

    from twbert.shards import segment

    d = tmp_path / "dict.txt"
    d.write_text("甲乙丙 1000\n丁戊 1000\n", encoding="utf-8")
    a = Segmenter(INSTALLED[0], dictionary=str(d))
    before = segment._load.cache_info()
    b = Segmenter(INSTALLED[0], dictionary=str(d))
    assert segment._load.cache_info().hits == before.hits + 1  # the second task reuses the loaded words
    assert a.cut("甲乙丙丁戊") == b.cut("甲乙丙丁戊") == ["甲乙丙", "丁戊"]
    d.write_text("甲乙 1000\n丙丁戊 1000\n", encoding="utf-8")  # a changed dictionary is read again
    st = d.stat()
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert Segmenter(INSTALLED[0], dictionary=str(d)).cut("甲乙丙丁戊") == ["甲乙", "丙丁戊"]


def test_cached_segmenter_cuts_as_a_fresh_one(segmenters):
    from twbert.shards import segment

    text = "".join(SENTENCES)
    for name, seg in segmenters.items():
        segment._load.cache_clear()
        fresh = Segmenter(name)
        assert fresh.cut(text) == seg.cut(text) == Segmenter(name).cut(text)

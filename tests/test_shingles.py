"""Chinese normalisation and character n-gram shingles."""

from __future__ import annotations

import pickle
import random

import numpy as np
from neardups import document

from twbert.pipeline.shingles import Shingler


def test_normalize_folds_width_case_punctuation_and_script():
    s = Shingler(5)
    assert s.normalize("ＡＢＣ，１２３。\n  軟體　開發！") == "abc123软体开发"
    assert s.normalize("臺灣的資料庫系統") == s.normalize("台湾的资料库系统")
    assert s.normalize("「測試」——（一）…") == "测试一"
    assert Shingler(5, fold=None).normalize("臺灣資料") == "臺灣資料"


def test_shingles_are_hashed_character_ngrams():
    s = Shingler(3)
    sh = s.shingles("今天天氣很好，今天天氣")
    assert sh.dtype == np.uint64 and sh.shape == (8,)  # 10 characters once punctuation goes: 8 trigrams
    assert sh[0] == sh[6] and sh[1] == sh[7]  # the same trigram hashes the same wherever it is (今天天)
    assert len(set(sh.tolist())) == 6
    # Simplified and Traditional twins, re-punctuated, shingle identically.
    assert np.array_equal(s.shingles("電腦網路，資訊安全。"), s.shingles("电脑网路 资讯安全"))


def test_short_and_empty_texts():
    s = Shingler(5)
    assert s.shingles("你好").shape == (1,)  # shorter than n: one shingle, so exact short copies collide
    assert s.shingles("你好")[0] != s.shingles("您好")[0]
    assert s.shingles("，。！ ").size == 0


def test_hashes_do_not_collide_on_distinct_ngrams():
    s = Shingler(4, fold=None)
    text = document(random.Random(0), paragraphs=30)
    cps = s.normalize(text)
    grams = {cps[i : i + 4] for i in range(len(cps) - 3)}
    assert len(set(s.shingles(text).tolist())) == len(grams)


def test_pickles_without_its_converter():
    s = Shingler(4)
    before = s.shingles("資料科學與機器學習")
    clone = pickle.loads(pickle.dumps(s))
    assert clone.n == 4 and clone._converter is None
    assert np.array_equal(clone.shingles("資料科學與機器學習"), before)

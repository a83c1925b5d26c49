"""Web filters: ChineseQualityFilter (FineWeb2 cmn_Hani thresholds) and WebReferenceStripper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _wiki_pages import WEB_GOOD, assert_reconciles, read_documents, stage_stats
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.dumps import write_fineweb_parquet
from twbert.pipeline.fineweb import FineWebReader
from twbert.pipeline.quality import ChineseQualityFilter
from twbert.pipeline.references import WebReferenceStripper

ARTICLE = (
    "高雄港是臺灣最大的國際商港，位於高雄市的西南方，港區範圍涵蓋旗津、前鎮與小港等地。\n"
    "港口在日治時期開始大規模建設，戰後經過多次擴建，目前擁有六十多座貨櫃碼頭與散雜貨碼頭。\n"
    "近年來港務公司推動港市合一，將舊港區的倉庫改建為展演空間與商場，吸引許多觀光客前來參觀。\n"
    "此外，輕軌系統沿著港區興建，串連駁二藝術特區、流行音樂中心與會展中心，改變了市民的生活方式。\n"
)


def doc(text, **meta):
    return Document(text=text, id="x", metadata={"source": "web", **meta})


@pytest.fixture(scope="module")
def f():
    return ChineseQualityFilter()


def reason(f, d):
    r = f.filter(d)
    return r if r is True else r[1]


def test_clean_article_passes(f):
    assert reason(f, doc(ARTICLE, language_score=0.95)) is True
    assert reason(f, doc(WEB_GOOD)) is True


OFF = dict(language_score=None, dup_line_frac=None, top_n_grams=(), dup_n_grams=(), line_punct_thr=None,
           char_duplicates_ratio=None, new_line_ratio=None, min_doc_words=None, max_doc_words=None,
           max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
           max_non_alpha_words_ratio=None, min_stop_words=None)


def only(*keys):
    """The filter with just these checks at their FineWeb2 values."""
    kw = dict(OFF)
    defaults = ChineseQualityFilter.__init__.__defaults__
    names = ChineseQualityFilter.__init__.__code__.co_varnames[1 : 1 + len(defaults)]
    kw.update({k: v for k, v in zip(names, defaults) if k in keys})
    return ChineseQualityFilter(**kw)


def without(*keys):
    """The full filter with these checks off."""
    return ChineseQualityFilter(**{k: OFF[k] for k in keys})


# Short sentences that share no 8-character span, so a text made of them trips only the check under test.
S = (
    "清晨的漁港飄著海風", "阿嬤在市場挑選新鮮蔬菜", "山上的茶園一片翠綠", "夜市攤販陸續點亮燈火",
    "颱風過後街道滿是落葉", "老師帶學生到溪邊觀察青蛙", "火車穿過隧道駛向東部", "書店角落擺著舊唱片",
    "農夫趁著晴天收割稻穀", "廟口的榕樹下有人下棋", "單車騎士沿著河堤前進", "咖啡館外排起長長隊伍",
    "博物館推出陶瓷特展", "孩子們在操場放風箏", "雨季讓瀑布水量大增", "工程師正在測試新軟體",
)
NO_STOP_WORDS = (3, 5, 6, 7, 8, 10, 11, 12, 14)  # sentences without any of the cmn_Hani stop words


@pytest.mark.parametrize(
    "keys,text,why",
    [
        (["dup_line_frac"], "\n".join([f"{a}，{b}。" for a, b in zip(S[::2], S[1::2])] + ["讚！"] * 5), "dup_line_frac"),
        (["top_n_grams"], "\n".join(f"哈哈哈哈{s}。" for s in S[:12]), "top_2_gram"),
        (["top_n_grams"], "\n".join(f"限時大特價{s}。" for s in S[:12]), "top_3_gram"),
        # The same sentences twice, in another order: repeated spans, but no line repeated.
        (["dup_n_grams"], "，".join(S[:8]) + "。\n" + "，".join(reversed(S[:8])) + "。", "duplicated_5_n_grams"),
        (["line_punct_thr"], "\n".join(S[:12]), "line_punct_ratio"),
        (["char_duplicates_ratio"], "\n".join([f"{s}。" for s in S[:10]] + ["工程師正在測試新軟體也修好了舊系統的錯誤。"] * 2), "char_dup_ratio"),
        (["new_line_ratio"], "\n".join([f"{s[:4]}。" for s in S] + [f"{s[-4:]}。" for s in S]), "list_ratio"),
        (["min_doc_words"], "，".join(S[:5]) + "。", "gopher_short_doc"),
        (["max_non_alpha_words_ratio"], "今年各月的雨量是" + "、".join(str(17 + i * 7919 % 9973) for i in range(30)) + "毫米。", "gopher_below_alpha_threshold"),
        (["min_stop_words"], "，".join(S[i] for i in NO_STOP_WORDS) + "。", "gopher_enough_stop_words"),
        (["max_symbol_word_ratio"], " ".join("#" + s[:2] for s in S) + "\n" + "，".join(S[:4]) + "。", "gopher_too_many_hashes"),
        (["max_ellipsis_lines_ratio"], "\n".join(["今天的天氣是……", "他在想什麼……", ARTICLE]), "gopher_too_many_end_ellipsis"),
        (["language_score"], ARTICLE, "language_score"),
    ],
)
def test_each_rule_drops_with_its_reason(keys, text, why):
    d = doc(text, language_score=0.5 if keys == ["language_score"] else 0.95)
    assert reason(only(*keys), d) == why
    assert reason(without(*keys), d) is True  # and nothing else in the filter would have dropped it


def test_full_filter_drops_spam(f):
    assert reason(f, doc("\n".join(["限時優惠快來買"] * 30))) == "dup_line_frac"
    assert reason(f, doc("哈" * 300)) == "top_2_gram"


def test_wiki_documents_pass_through(f):
    assert f.filter(Document(text="哈" * 300, id="w", metadata={"source": "wiki"})) is True


def test_thresholds_are_configurable():
    loose = ChineseQualityFilter(dup_line_frac=None, top_n_grams=(), dup_n_grams=(), char_duplicates_ratio=None)
    assert loose.filter(doc("\n".join(["今天天氣很好我們去公園散步吧。"] * 4 + [ARTICLE]))) is True


def test_real_taiwan_wikipedia_paragraphs_mostly_pass():
    """DRCD paragraphs are clean Taiwan Wikipedia prose: the filter must keep nearly all of them."""
    # ../shared next to the checkout holds local copies of public data sets; CI has none.
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "drcd_test.json"
    if not path.is_file():
        pytest.skip(f"DRCD not available at {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    paras = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    f = ChineseQualityFilter()
    kept = sum(f.filter(doc(p)) is True for p in paras)
    assert kept / len(paras) > 0.9


def test_reference_stripper_rules():
    s = WebReferenceStripper()
    body = ARTICLE.strip()
    assert s.strip(body + "\n參考資料：\n1. 高雄港務公司年報\nhttps://example.com/a")[0] == body
    assert s.strip(body + "\n\n資料來源：中央社\n原文網址：https://example.com/b\n")[0] == body
    assert s.strip(body + "\n[1] https://example.com\n[2] 某報告")[0] == body
    # A mid-page "參見" heading followed by most of the text is not a reference block.
    text = "參見\n" + body
    assert s.strip(text) == (text, 0)
    assert s.strip(body) == (body, 0)


def test_web_filters_in_a_pipeline(tmp_path):
    rows = [
        {"text": ARTICLE + "延伸閱讀\nhttps://example.com/1\nhttps://example.com/2", "id": "good"},
        {"text": "\n".join(["限時優惠快來買"] * 30), "id": "spam"},
        {"text": "參考資料\nhttps://example.com/only", "id": "only-refs"},
        {"text": ARTICLE, "id": "low-lid", "language_score": 0.2},
    ]
    write_fineweb_parquet(tmp_path / "in" / "a.parquet", rows)
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor(
        [FineWebReader(str(tmp_path / "in")), WebReferenceStripper(), ChineseQualityFilter(), JsonlWriter(str(out))],
        tasks=2, workers=1, logging_dir=str(logs),
    ).run()
    docs = {d["id"]: d for d in read_documents(out)}
    assert set(docs) == {"good"}
    assert docs["good"]["text"] == ARTICLE.strip()
    steps = stage_stats(logs)
    assert steps[1]["stats"]["dropped_empty"] == 1 and steps[1]["stats"]["ref_stripped"] == 2
    q = steps[2]["stats"]
    assert q["dropped_dup_line_frac"] == 1 and q["dropped_language_score"] == 1
    assert_reconciles(steps)


def test_ngram_counts_equal_datatrove_on_characters():
    """The vectorised n-gram counts (incremental keys, one sort) equal datatrove's own functions run on
    the characters, for n in the filter's increasing order and out of order."""
    import random

    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate

    from twbert.pipeline.quality import _Grams

    rng = random.Random(3)
    texts = ["".join(rng.choice("甲乙丙丁戊") for _ in range(rng.randint(1, 300))) for _ in range(60)]
    texts += ["重複的句子。" * rng.randint(1, 30) + ARTICLE[: rng.randint(0, 80)] for _ in range(20)] + [ARTICLE * 2]
    for text in texts:
        g = _Grams(text)
        for n in [2, 3, 5, 7, 9, 10, 12, 14, 15, 17, 4, 12, 1]:
            grams = [text[i : i + n] for i in range(len(text) - n + 1)]
            assert g.top_chars(n) == (find_top_duplicate(grams) if grams else 0), (text, n)
            assert g.dup_chars(n) == find_all_duplicate(list(text), n), (text, n)

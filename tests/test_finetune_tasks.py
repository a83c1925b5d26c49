"""Each task's reader on a fixture in its real format, and the errors for files that do not fit it."""

from __future__ import annotations

import json

import pytest

from twbert.errors import UsageError
from twbert.finetune import tasks
from twbert.finetune.convert import convert_qa, converter, realign


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def rows(r):
    return [(e.text_a, e.text_b, e.label) for e in r.examples]


def test_chnsenticorp(tmp_path):
    p = write(tmp_path, "dev.tsv", 'label\ttext_a\n1\t"好" 吃\n0\t很差\n\n')
    r = tasks.read("chnsenticorp", p)
    assert rows(r) == [('"好" 吃', None, "1"), ("很差", None, "0")] and r.read == 2
    with pytest.raises(UsageError, match=r"bad.tsv:2: 3 tab-separated column\(s\), expected 2"):
        tasks.read("chnsenticorp", write(tmp_path, "bad.tsv", "label\ttext_a\n1\ta\tb\n"))
    with pytest.raises(UsageError, match=r"nohead.tsv:1: header"):
        tasks.read("chnsenticorp", write(tmp_path, "nohead.tsv", "1\t好\n"))


def test_thucnews(tmp_path):
    r = tasks.read("thucnews", write(tmp_path, "cnews.val.txt", "體育\t比賽結束\n財經\t股市上漲\n"))
    assert rows(r) == [("比賽結束", None, "體育"), ("股市上漲", None, "財經")]
    with pytest.raises(UsageError, match=r"x.txt:1: .*label<TAB>text"):
        tasks.read("thucnews", write(tmp_path, "x.txt", "只有一欄\n"))


def test_tnews_and_ocnli_jsonl(tmp_path):
    tnews = write(tmp_path, "tnews.json", "\n".join(json.dumps(o, ensure_ascii=False) for o in [
        {"label": "102", "label_desc": "news_entertainment", "sentence": "新片上映", "keywords": ""},
        {"id": 3, "sentence": "無標籤的測試句"}]) + "\n")
    assert rows(tasks.read("tnews", tnews)) == [("新片上映", None, "102"), ("無標籤的測試句", None, None)]
    with pytest.raises(UsageError, match=r"bad.json:2: not a JSON object"):
        tasks.read("tnews", write(tmp_path, "bad.json", '{"sentence": "a", "label": "1"}\nlabel\tsentence\n'))
    ocnli = write(tmp_path, "ocnli.json", "\n".join(json.dumps(o, ensure_ascii=False) for o in [
        {"sentence1": "他在家", "sentence2": "他不在家", "label": "contradiction", "genre": "news"},
        {"sentence1": "甲", "sentence2": "乙", "label": "-"}]) + "\n")
    r = tasks.read("ocnli", ocnli)
    assert rows(r) == [("他在家", "他不在家", "contradiction")]
    assert r.read == 2 and sum(r.dropped.values()) == 1
    with pytest.raises(UsageError, match=r"o2.json:1: no string field sentence2"):
        tasks.read("ocnli", write(tmp_path, "o2.json", '{"sentence1": "a", "label": "neutral"}\n'))


def test_xnli_train_and_dev(tmp_path):
    train = write(tmp_path, "multinli.train.zh.tsv", "premise\thypo\tlabel\n他來了\t他沒來\tcontradictory\n")
    assert rows(tasks.read("xnli", train)) == [("他來了", "他沒來", "contradiction")]
    head = "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1\tsentence2\n"
    dev = write(tmp_path, "xnli.dev.tsv", head + "en\tneutral\t(\t(\tHe came\tHe left\n"
                "zh\tentailment\t(\t(\t他來了\t有人來了\n")
    r = tasks.read("xnli", dev)
    assert rows(r) == [("他來了", "有人來了", "entailment")] and r.dropped == {"language other than zh": 1}
    with pytest.raises(UsageError, match=r"h.tsv:1: header"):
        tasks.read("xnli", write(tmp_path, "h.tsv", "a\tb\tc\n"))


@pytest.mark.parametrize("task", ["lcqmc", "bq"])
def test_lcqmc_and_bq_with_or_without_header(tmp_path, task):
    body = "怎麼開戶\t如何開戶\t1\n今天幾號\t明天天氣\t0\n"
    assert rows(tasks.read(task, write(tmp_path, "a.tsv", body))) == [("怎麼開戶", "如何開戶", "1"), ("今天幾號", "明天天氣", "0")]
    assert len(tasks.read(task, write(tmp_path, "b.tsv", "text_a\ttext_b\tlabel\n" + body)).examples) == 2
    with pytest.raises(UsageError, match=r"c.tsv:2: label 'x'"):
        tasks.read(task, write(tmp_path, "c.tsv", body.splitlines()[0] + "\n甲\t乙\tx\n"))


def test_generic_classify_and_pair(tmp_path):
    cols = tasks.Columns("review", "other", "stars")
    r = tasks.read("classify", write(tmp_path, "a.jsonl", '{"review": "好", "stars": 5}\n'), cols)
    assert rows(r) == [("好", None, "5")]
    r = tasks.read("pair", write(tmp_path, "b.tsv", "stars\treview\tother\n1\t甲\t乙\n"), cols)
    assert rows(r) == [("甲", "乙", "1")]
    with pytest.raises(UsageError, match=r"c.tsv:1: the header .* has no column other"):
        tasks.read("pair", write(tmp_path, "c.tsv", "stars\treview\n1\t甲\n"), cols)


def test_squad(tmp_path):
    good = {"data": [{"paragraphs": [{"context": "臺北是首都", "qas": [
        {"id": " 1 ", "question": "首都？", "answers": [{"text": "臺北", "answer_start": 0}]}]}]}]}
    r = tasks.read("drcd", write(tmp_path, "d.json", json.dumps(good, ensure_ascii=False)))
    assert r.examples[0].qid == "1" and r.examples[0].answers == [("臺北", 0)]
    del good["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"]
    with pytest.raises(UsageError, match=r"e.json: data\[0\].paragraphs\[0\].qas\[0\].answers\[0\] has no 'answer_start'"):
        tasks.read("cmrc2018", write(tmp_path, "e.json", json.dumps(good)))
    with pytest.raises(UsageError, match="not valid JSON"):
        tasks.read("span-qa", write(tmp_path, "f.json", "{"))


def test_opencc_realigns_answers_whose_offset_moved():
    cc = converter("s2twp")
    context = "他的内存不够，常写博客，住在台北的家。"
    got = realign(context, cc(context), "台北", context.index("台北"), cc)
    assert cc(context)[got.start:got.start + len(got.text)] == got.text == "臺北"
    assert got.start == context.index("台北") + 2  # 内存 -> 記憶體, 博客 -> 部落格: two characters longer
    assert converter("none")("软件") == "软件"


def test_unalignable_answers_are_counted_with_the_reason():
    cc = converter("s2twp")
    ex = tasks.QAExample("q", "什麼？", "他的内存不够，常写博客", [("博", 9), ("博客", 9), ("存", 0)])
    converted, unaligned = convert_qa([ex], cc)
    assert converted[0].answers[1] == ("部落格", 10)  # a phrase cut by the answer's edge cannot be found
    assert [u["answer"] for u in unaligned] == ["博", "存"]
    assert "in its context" in unaligned[0]["reason"] and "does not point at" in unaligned[1]["reason"]
    assert converted[0].answers[0][1] == -1
    with pytest.raises(UsageError, match="--opencc nonsense"):
        converter("nonsense")

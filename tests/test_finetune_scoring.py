"""The QA scorer gives the official CMRC 2018 script's figures; classification scores are exact."""

from __future__ import annotations

import json
import random

import _cmrc2018_official as official
import pytest

from twbert.cli import main
from twbert.finetune import scoring

# Cases aimed at each rule of the official script: Chinese units, listed and unlisted punctuation,
# English runs (NLTK splits contractions and quotes), digits, case, surrounding space, several golds.
CASES = [
    (["臺北市"], "臺北市"),
    (["臺北市"], "臺北"),
    (["臺北市"], "「臺北市」"),
    (["臺北市"], "臺北市。"),
    (["1949年"], "1949 年"),
    (["iPhone 6s Plus"], "iphone 6s"),
    (["Don't Stop"], "don't stop believing"),
    (["C.L. Max Nikias"], "C.L. Max"),
    (["約3.5公里"], "3.5公里"),
    (['"Hello," she said'], "hello"),
    (["A-B"], "A B"),
    (["中華民國（臺灣）"], "中華民國臺灣"),
    (["……等等"], "等等"),
    (["新北市", "臺北市"], "北市"),
    (["長江"], "黃河"),
    (["  空白  "], "空白"),
    (["ＡＢＣ公司"], "abc公司"),
    (["㐀"], "㐀"),  # outside U+4E00..U+9FA5: word-tokenised, not one unit per character
    (["第二次世界大戰"], "二次世界大戰期間"),
    (["apple banana apple"], "banana apple apple"),
]


def gold_file(cases):
    qas = [{"id": f"q{i} ", "question": "?", "answers": [{"text": t, "answer_start": 0} for t in answers]}
           for i, (answers, _) in enumerate(cases)]
    return {"data": [{"paragraphs": [{"context": "", "qas": qas}]}]}


@pytest.mark.parametrize("answers,prediction", CASES)
def test_each_case_matches_the_official_functions(answers, prediction):
    tok = scoring.word_tokenize
    assert scoring.mixed_segmentation(prediction, rm_punc=True) == official.mixed_segmentation(prediction, tok, True)
    assert scoring.mixed_segmentation(prediction) == official.mixed_segmentation(prediction, tok)
    assert scoring.f1_score(answers, prediction) == pytest.approx(official.calc_f1_score(answers, prediction, tok),
                                                                   abs=1e-12)
    assert scoring.em_score(answers, prediction) == official.calc_em_score(answers, prediction)


def test_segmentation_examples():
    assert scoring.mixed_segmentation("iPhone 6s在臺北") == ["iphone", "6s", "在", "臺", "北"]
    assert scoring.mixed_segmentation("Don't「走」", rm_punc=True) == ["do", "n't", "走"]
    # F1 is over the longest common contiguous run: "apple apple" vs "apple banana apple" shares 2 of 3
    assert scoring.f1_score(["apple banana apple"], "banana apple apple") == pytest.approx(2 * (2 / 3) ** 2 / (4 / 3))


def perturb(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 3)):
        op = rng.choice(["drop", "add", "punct", "swap", "space", "upper"])
        i = rng.randrange(len(chars) + 1)
        if op == "drop" and chars:
            del chars[min(i, len(chars) - 1)]
        elif op == "add":
            chars.insert(i, rng.choice("的了北京AbZ9 ."))
        elif op == "punct":
            chars.insert(i, rng.choice(sorted(scoring.PUNCTUATION) + [",", ".", "!", "?", "'", '"']))
        elif op == "swap" and len(chars) > 1:
            j = rng.randrange(len(chars) - 1)
            chars[j], chars[j + 1] = chars[j + 1], chars[j]
        elif op == "space":
            chars.insert(i, " ")
        else:
            chars = list("".join(chars).upper())
    return "".join(chars)


def test_perturbed_predictions_score_as_the_official_script(tmp_path, capsys):
    rng = random.Random(0)
    golds = [a for answers, _ in CASES for a in answers] + ["國立臺灣大學", "1911年10月10日", "Mark Twain", "U.S. Army"]
    cases = []
    for _ in range(300):
        answers = rng.sample(golds, rng.choice([1, 1, 2, 3]))
        cases.append((answers, perturb(rng.choice(answers + golds[:3]), rng)))
    gold = gold_file(cases)
    preds = {f"q{i}": p for i, (_, p) in enumerate(cases) if i % 17}  # some questions unanswered
    f1, em, total, skip = official.evaluate(gold, preds, scoring.word_tokenize)
    got = scoring.score_qa(scoring.gold_answers(gold), preds)
    assert got == {"em": pytest.approx(em, abs=1e-9), "f1": pytest.approx(f1, abs=1e-9), "total": total, "skip": skip}
    assert 0 < em < 100 and 0 < f1 < 100 and skip == 18  # the perturbations reach every regime

    (tmp_path / "gold.json").write_text(json.dumps(gold, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(preds, ensure_ascii=False), encoding="utf-8")
    assert main(["eval", "qa", str(tmp_path / "gold.json"), str(tmp_path / "pred.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"em", "f1", "total", "skip"}
    assert printed["em"] == pytest.approx(em) and printed["f1"] == pytest.approx(f1)


def test_bad_files_name_the_file(tmp_path, capsys):
    (tmp_path / "gold.json").write_text(json.dumps({"data": [{"paragraphs": [{"qas": [{"id": "a"}]}]}]}))
    (tmp_path / "pred.json").write_text("[]")
    assert main(["eval", "qa", str(tmp_path / "gold.json"), str(tmp_path / "pred.json")]) == 2
    assert "gold.json" in capsys.readouterr().err
    (tmp_path / "gold.json").write_text(json.dumps(gold_file(CASES[:1])))
    assert main(["eval", "qa", str(tmp_path / "gold.json"), str(tmp_path / "pred.json")]) == 2
    err = capsys.readouterr().err
    assert "pred.json" in err and "JSON object" in err


def test_word_tokenizer_is_nltks_without_the_sentence_split():
    from nltk.tokenize import NLTKWordTokenizer

    for text in ["don't stop", 'he said "hi"', "3.5 km (approx.)", "U.S. Army", "C.L. Max Nikias"]:
        assert scoring.word_tokenize(text) == NLTKWordTokenizer().tokenize(text)


def test_same_segments_as_nltk_word_tokenize_where_punkt_is_installed():
    nltk = pytest.importorskip("nltk")
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        pytest.skip("NLTK's punkt_tab data is not installed (nltk.download('punkt_tab'))")
    for text in ["iphone 6s plus", "don't stop believing", "3.5 km", '"hello," she said', "c.l. max nikias"]:
        assert scoring.word_tokenize(text) == nltk.word_tokenize(text)


def test_classification_scores():
    got = scoring.score_classification([0, 0, 0, 1], [0, 0, 1, 1])
    assert got["accuracy"] == 75.0
    assert got["macro_f1"] == pytest.approx(100 * (0.8 + 2 / 3) / 2)

"""Scores: the CMRC 2018 official EM/F1 for span QA, accuracy and macro-F1 for classification.

The QA scorer follows `squad-style-data/cmrc2018_evaluate.py` of ymcui/cmrc2018 (commit c0eb1b6b),
the script HFL's published DRCD and CMRC 2018 figures come from, including its quirks:

- "mixed segmentation": the text is lower-cased and stripped; each character of U+4E00..U+9FA5 is
  one unit, and so is each character of the script's punctuation list; runs of other characters are
  word-tokenised by NLTK. For F1 the listed punctuation is dropped first.
- F1 uses the longest common *substring* (contiguous) of the two segmentations, not the longest
  common subsequence its comments and most descriptions suggest: `find_lcs` there is the classic
  substring dynamic programme. The maximum over the gold answers counts.
- EM compares the strings after removing the listed punctuation (whitespace stays).
- `……` is listed but never matches (the script compares one character at a time); ASCII `.` and
  `,` are not listed. Both are kept as they are.
- A question without a prediction scores 0 and is counted in `skip`; `total` counts every question.

The official script calls `nltk.word_tokenize`, which first splits sentences with NLTK's Punkt model
(data that must be downloaded). Here the same word tokenizer runs without the sentence split
(`preserve_line=True`), so no data is needed and results do not depend on what is installed. The two
differ only on a run holding `.`, `?` or `!` followed by a space and more text, and only where Punkt
would split there; in DRCD's test set that is 4 of 6,986 gold answers (initials and "Dr.", where the
English Punkt model knows the abbreviation and would not split either). docs/finetune.md has the
equality checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from twbert.errors import UsageError

PUNCTUATION = frozenset([
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
])
_CHINESE = re.compile(r"[\u4e00-\u9fa5]")


def word_tokenize(text: str) -> list[str]:
    """NLTK's word tokenizer (the one `nltk.word_tokenize` applies to each sentence), no sentence split."""
    from nltk.tokenize import word_tokenize as nltk_word_tokenize

    return nltk_word_tokenize(text, preserve_line=True)


def mixed_segmentation(text: str, rm_punc: bool = False) -> list[str]:
    out: list[str] = []
    run = ""
    for ch in str(text).lower().strip():
        if rm_punc and ch in PUNCTUATION:
            continue
        if _CHINESE.match(ch) or ch in PUNCTUATION:
            if run:
                out.extend(word_tokenize(run))
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(word_tokenize(run))
    return out


def remove_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in PUNCTUATION)


def longest_common_substring(a: list[str], b: list[str]) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def f1_score(answers: Iterable[str], prediction: str) -> float:
    pred = mixed_segmentation(prediction, rm_punc=True)
    scores = []
    for ans in answers:
        gold = mixed_segmentation(ans, rm_punc=True)
        common = longest_common_substring(gold, pred)
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(pred), common / len(gold)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def em_score(answers: Iterable[str], prediction: str) -> int:
    pred = remove_punctuation(prediction)
    return int(any(remove_punctuation(ans) == pred for ans in answers))


def gold_answers(gold: dict, source: str = "gold") -> dict[str, list[str]]:
    """{question id (stripped): [answer texts]} of a SQuAD-style dict, in file order."""
    out: dict[str, list[str]] = {}
    try:
        for a, article in enumerate(gold["data"]):
            for p, para in enumerate(article["paragraphs"]):
                for q, qa in enumerate(para["qas"]):
                    answers = [x["text"] for x in qa["answers"]]
                    if not answers:
                        raise UsageError(f"{source}: data[{a}].paragraphs[{p}].qas[{q}] (id {qa['id']!r}) has no "
                                         "answer: the CMRC 2018 scorer needs at least one gold answer per question")
                    out[str(qa["id"]).strip()] = answers
    except (KeyError, TypeError) as e:
        raise UsageError(f"{source}: not SQuAD-style JSON ({{'data': [{{'paragraphs': [{{'qas': [{{'id', "
                         f"'answers': [{{'text'}}]}}]}}]}}]}}): missing or wrong {e}") from None
    return out


def score_qa(gold: dict[str, list[str]], predictions: dict[str, str]) -> dict:
    """{"em", "f1", "total", "skip"} as the official script prints them (percentages, unrounded)."""
    f1 = em = skip = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            skip += 1
            continue
        prediction = str(predictions[qid])
        f1 += f1_score(answers, prediction)
        em += em_score(answers, prediction)
    total = len(gold)
    return {"em": 100.0 * em / total if total else 0.0, "f1": 100.0 * f1 / total if total else 0.0,
            "total": total, "skip": skip}


def _load_json(path: str | Path, what: str):
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file (expected {what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UsageError(f"{path}: not valid JSON ({e}); expected {what}") from None


def score_qa_files(gold_path: str | Path, pred_path: str | Path) -> dict:
    """`twbert eval qa GOLD.json PRED.json`."""
    gold = gold_answers(_load_json(gold_path, "a SQuAD-style gold file"), str(gold_path))
    preds = _load_json(pred_path, 'a JSON object {"question id": "answer text"}')
    if not isinstance(preds, dict):
        raise UsageError(f'{pred_path}: expected a JSON object {{"question id": "answer text"}}, '
                         f"got a {type(preds).__name__}")
    return score_qa(gold, preds)


def score_classification(labels: list, predictions: list) -> dict:
    """Accuracy and macro-F1 (the mean over the gold classes of per-class F1), in percent."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    n = len(labels)
    correct = sum(g == p for g, p in zip(labels, predictions))
    f1s = []
    for c in sorted(set(labels), key=str):
        tp = sum(g == c and p == c for g, p in zip(labels, predictions))
        fp = sum(g != c and p == c for g, p in zip(labels, predictions))
        fn = sum(g == c and p != c for g, p in zip(labels, predictions))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": 100.0 * correct / n if n else 0.0,
            "macro_f1": 100.0 * sum(f1s) / len(f1s) if f1s else 0.0, "total": n}

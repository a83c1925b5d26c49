"""The fine-tuning tasks: what each one reads, in the format its public release uses.

    task          kind       file format (as distributed)
    drcd          span QA    SQuAD JSON (DRCKnowledgeTeam/DRCD)
    cmrc2018      span QA    SQuAD JSON (ymcui/cmrc2018 squad-style-data)
    span-qa       span QA    SQuAD JSON, users' own
    chnsenticorp  single     TSV with a header `label<TAB>text_a` (HFL's and ERNIE's copies)
    thucnews      single     TSV without a header: `label<TAB>text` (gaussic's cnews.*.txt subset)
    tnews         single     CLUE JSONL: `sentence`, `label` (and label_desc, keywords)
    xnli          pair       TSV with a header: BERT's multinli.train.zh.tsv (premise, hypo, label) or
                             xnli.dev/test.tsv (language, gold_label, sentence1, sentence2; zh rows kept)
    lcqmc, bq     pair       TSV: `text_a<TAB>text_b<TAB>label`, with or without that header line
    ocnli         pair       CLUE JSONL: `sentence1`, `sentence2`, `label` (`-`: no majority, dropped)
    classify      single     JSONL or TSV with a header; columns named by --text-column/--label-column
    pair          pair       the same, plus --text-b-column

A line that does not fit its task's format is an error naming the file, the line and what was
expected; rows a release marks as unusable (OCNLI's `-`, XNLI's other languages) are counted drops.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from twbert.errors import UsageError

QA_TASKS = ("drcd", "cmrc2018", "span-qa")
SINGLE_TASKS = ("chnsenticorp", "thucnews", "tnews", "classify")
PAIR_TASKS = ("xnli", "lcqmc", "bq", "ocnli", "pair")
TASKS = QA_TASKS + SINGLE_TASKS + PAIR_TASKS


def kind(task: str) -> str:
    if task in QA_TASKS:
        return "qa"
    if task in SINGLE_TASKS or task in PAIR_TASKS:
        return "classify"
    raise UsageError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")


@dataclass
class QAExample:
    qid: str
    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, character offset in context)


@dataclass
class ClsExample:
    text_a: str
    text_b: str | None
    label: str | None
    where: str  # "file:line", for messages


@dataclass
class Read:
    examples: list
    read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


@dataclass
class Columns:
    """Column names for the generic `classify` and `pair` tasks."""
    text: str = "text"
    text_b: str = "text_b"
    label: str = "label"


def read(task: str, path: str | Path, columns: Columns | None = None) -> Read:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if task in QA_TASKS:
        return read_squad(path)
    readers = {"chnsenticorp": _chnsenticorp, "thucnews": _thucnews, "tnews": _tnews, "xnli": _xnli,
               "lcqmc": _lcqmc, "bq": _lcqmc, "ocnli": _ocnli}
    if task in readers:
        return readers[task](path)
    if task in ("classify", "pair"):
        return _generic(path, columns or Columns(), pair=task == "pair")
    raise UsageError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")


# --- span QA -------------------------------------------------------------------------------------------------

SQUAD_SHAPE = '{"data": [{"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}'


def read_squad(path: Path) -> Read:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UsageError(f"{path}: not valid JSON ({e}); expected SQuAD-style JSON {SQUAD_SHAPE}") from None
    out = Read([])
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UsageError(f"{path}: expected SQuAD-style JSON {SQUAD_SHAPE}; the top level has no 'data' list")
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(_field(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(para, "context", str, path, where)
            for q, qa in enumerate(_field(para, "qas", list, path, where)):
                qwhere = f"{where}.qas[{q}]"
                out.read += 1
                answers = []
                for n, ans in enumerate(_field(qa, "answers", list, path, qwhere)):
                    text = _field(ans, "text", str, path, f"{qwhere}.answers[{n}]")
                    start = _field(ans, "answer_start", int, path, f"{qwhere}.answers[{n}]")
                    answers.append((text, start))
                out.examples.append(QAExample(str(_field(qa, "id", (str, int), path, qwhere)).strip(),
                                              _field(qa, "question", str, path, qwhere), context, answers))
    return out


def _field(obj, key, typ, path, where):
    if not isinstance(obj, dict) or key not in obj:
        raise UsageError(f"{path}: {where} has no '{key}'; expected SQuAD-style JSON {SQUAD_SHAPE}")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UsageError(f"{path}: {where}.{key} is a {type(value).__name__}; expected SQuAD-style JSON {SQUAD_SHAPE}")
    return value


# --- classification ------------------------------------------------------------------------------------------

def _tsv_rows(path: Path):
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        # QUOTE_NONE: the releases are not CSV-quoted; a review may start with a quotation mark.
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if row and any(cell.strip() for cell in row):
                yield lineno, row


def _expect(path: Path, lineno: int, row: list[str], n: int, what: str) -> None:
    if len(row) != n:
        raise UsageError(f"{path}:{lineno}: {len(row)} tab-separated column(s), expected {n}: {what}")


def _chnsenticorp(path: Path) -> Read:
    out = Read([])
    what = "label<TAB>text_a, under a header line 'label<TAB>text_a' (HFL's and ERNIE's ChnSentiCorp)"
    header = False
    for lineno, row in _tsv_rows(path):
        if not header:
            if row != ["label", "text_a"]:
                raise UsageError(f"{path}:{lineno}: header {row[:3]}, expected {what}")
            header = True
            continue
        out.read += 1
        _expect(path, lineno, row, 2, what)
        if row[0] not in ("0", "1"):
            raise UsageError(f"{path}:{lineno}: label {row[0]!r}, expected 0 or 1 in {what}")
        out.examples.append(ClsExample(row[1], None, row[0], f"{path}:{lineno}"))
    return out


def _thucnews(path: Path) -> Read:
    out = Read([])
    for lineno, row in _tsv_rows(path):
        out.read += 1
        _expect(path, lineno, row, 2, "label<TAB>text with no header line (THUCNews' cnews.*.txt)")
        out.examples.append(ClsExample(row[1], None, row[0], f"{path}:{lineno}"))
    return out


def _jsonl(path: Path, what: str):
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UsageError(f"{path}:{lineno}: not a JSON object; expected one object per line: {what}") from None
            if not isinstance(obj, dict):
                raise UsageError(f"{path}:{lineno}: a JSON {type(obj).__name__}; expected one object per line: {what}")
            yield lineno, obj


def _need(path, lineno, obj, keys, what):
    missing = [k for k in keys if not isinstance(obj.get(k), str)]
    if missing:
        raise UsageError(f"{path}:{lineno}: no string field {', '.join(missing)}; expected {what}")


def _tnews(path: Path) -> Read:
    out = Read([])
    what = 'CLUE TNEWS JSONL: {"label": "102", "label_desc": ..., "sentence": ..., "keywords": ...}'
    for lineno, obj in _jsonl(path, what):
        out.read += 1
        _need(path, lineno, obj, ["sentence"], what)
        label = obj.get("label")
        out.examples.append(ClsExample(obj["sentence"], None, None if label is None else str(label), f"{path}:{lineno}"))
    return out


def _ocnli(path: Path) -> Read:
    out = Read([])
    what = 'CLUE OCNLI JSONL: {"sentence1": ..., "sentence2": ..., "label": "entailment|neutral|contradiction"}'
    for lineno, obj in _jsonl(path, what):
        out.read += 1
        _need(path, lineno, obj, ["sentence1", "sentence2"], what)
        label = obj.get("label")
        if label == "-":
            out.drop("label '-' (annotators without a majority)")
            continue
        if label is not None and label not in ("entailment", "neutral", "contradiction"):
            raise UsageError(f"{path}:{lineno}: label {label!r}; expected {what}")
        out.examples.append(ClsExample(obj["sentence1"], obj["sentence2"], label, f"{path}:{lineno}"))
    return out


XNLI_LABELS = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction",
               "contradictory": "contradiction"}  # BERT's machine-translated train set says contradictory


def _xnli(path: Path) -> Read:
    out = Read([])
    what = ("BERT's XNLI TSV with a header: multinli.train.zh.tsv (premise, hypo, label) or xnli.dev/test.tsv "
            "(language, gold_label, ..., sentence1, sentence2, ...)")
    header = None
    for lineno, row in _tsv_rows(path):
        if header is None:
            header = {name: i for i, name in enumerate(row)}
            if {"premise", "hypo", "label"} <= set(header):
                a, b, lab, lang = header["premise"], header["hypo"], header["label"], None
            elif {"sentence1", "sentence2", "gold_label", "language"} <= set(header):
                a, b, lab, lang = header["sentence1"], header["sentence2"], header["gold_label"], header["language"]
            else:
                raise UsageError(f"{path}:{lineno}: header {row[:6]}; expected {what}")
            continue
        out.read += 1
        _expect(path, lineno, row, len(header), f"as many columns as the header; {what}")
        if lang is not None and row[lang] != "zh":
            out.drop("language other than zh")
            continue
        if row[lab] not in XNLI_LABELS:
            raise UsageError(f"{path}:{lineno}: label {row[lab]!r}; expected entailment, neutral or contradiction")
        out.examples.append(ClsExample(row[a], row[b], XNLI_LABELS[row[lab]], f"{path}:{lineno}"))
    if header is None:
        raise UsageError(f"{path}: empty; expected {what}")
    return out


def _lcqmc(path: Path) -> Read:
    out = Read([])
    what = "text_a<TAB>text_b<TAB>label (0 or 1), with or without that header line (LCQMC, BQ Corpus)"
    for lineno, row in _tsv_rows(path):
        if not out.read and not out.examples and row == ["text_a", "text_b", "label"]:
            continue
        out.read += 1
        _expect(path, lineno, row, 3, what)
        if row[2] not in ("0", "1"):
            raise UsageError(f"{path}:{lineno}: label {row[2]!r}; expected {what}")
        out.examples.append(ClsExample(row[0], row[1], row[2], f"{path}:{lineno}"))
    return out


def _generic(path: Path, cols: Columns, pair: bool) -> Read:
    out = Read([])
    names = [cols.text] + ([cols.text_b] if pair else []) + [cols.label]
    flags = "--text-column, --text-b-column, --label-column" if pair else "--text-column, --label-column"
    if path.suffix in (".jsonl", ".json"):
        what = f"JSONL with string fields {', '.join(names)} (named by {flags})"
        for lineno, obj in _jsonl(path, what):
            out.read += 1
            _need(path, lineno, obj, names[:-1], what)
            label = obj.get(cols.label)
            out.examples.append(ClsExample(obj[cols.text], obj[cols.text_b] if pair else None,
                                           None if label is None else str(label), f"{path}:{lineno}"))
        return out
    what = f"TSV with a header naming the columns {', '.join(names)} (named by {flags}); .jsonl files are read as JSONL"
    header = None
    for lineno, row in _tsv_rows(path):
        if header is None:
            header = {name: i for i, name in enumerate(row)}
            missing = [n for n in names[:-1] if n not in header]
            if missing:
                raise UsageError(f"{path}:{lineno}: the header {row[:6]} has no column {', '.join(missing)}; expected {what}")
            continue
        out.read += 1
        _expect(path, lineno, row, len(header), f"as many columns as the header; {what}")
        label = row[header[cols.label]] if cols.label in header else None
        out.examples.append(ClsExample(row[header[cols.text]], row[header[cols.text_b]] if pair else None,
                                       label, f"{path}:{lineno}"))
    return out

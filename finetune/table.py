"""`twbert finetune table DIR...`: tasks x models, the user's runs beside the published baselines.

A cell is `max (mean)` over seeds, as HFL prints them: EM/F1 for span QA, accuracy for
classification. The reference rows are HFL's published figures, each max (mean) of 10 seeds, copied
exactly from three READMEs (SOURCES):

- ymcui/Chinese-BERT-wwm @ f6410cbd89c49dee8a42a7f7d94d9cca87b431aa, README.md, sections
  "简体中文阅读理解：CMRC 2018" to "篇章级文本分类：THUCNews": BERT (-base, Google's Chinese), ERNIE,
  BERT-wwm, BERT-wwm-ext, RoBERTa-wwm-ext, RoBERTa-wwm-ext-large.
- ymcui/Chinese-ELECTRA @ 3765b2d8ea46dc1968223b6009c89cf1269facee, README.md, "基线系统效果"
  (CMRC 2018, DRCD, XNLI, ChnSentiCorp, LCQMC, BQ Corpus): ELECTRA-small, ELECTRA-base (the
  ELECTRA-base figures are the same in MacBERT's README). Its other rows (ELECTRA-180g-*,
  ELECTRA-small-ex, RBT3, and ELECTRA-large there) give one figure per cell, no mean, and are left out.
- ymcui/MacBERT @ 9a72882bf097fb2edd2ea5adeb4e0330b374ac2c, README.md, "基线效果" (the same six
  tasks): MacBERT-base, MacBERT-large, and ELECTRA-large with max (mean) (its maxima are the single
  figures of Chinese-ELECTRA's README).

None of the ELECTRA or MacBERT READMEs tables THUCNews, TNEWS or OCNLI, so those cells are empty; the
CMRC 2018 challenge set is not a twbert split and is left out. HFL's figures are on the original
(Simplified for CMRC 2018, XNLI, ChnSentiCorp, LCQMC, BQ and THUCNews) data; twbert's runs convert
everything with OpenCC s2twp by default, as the paper did, so the rows are comparable in protocol,
not bit for bit. The papers' own tables are not copied here.
"""

from __future__ import annotations

import json
from pathlib import Path

from twbert.errors import UsageError

SOURCES = {
    "Chinese-BERT-wwm": "github.com/ymcui/Chinese-BERT-wwm @ f6410cbd89c49dee8a42a7f7d94d9cca87b431aa, README.md",
    "Chinese-ELECTRA": "github.com/ymcui/Chinese-ELECTRA @ 3765b2d8ea46dc1968223b6009c89cf1269facee, README.md",
    "MacBERT": "github.com/ymcui/MacBERT @ 9a72882bf097fb2edd2ea5adeb4e0330b374ac2c, README.md",
}
SOURCE = "HFL, " + "; ".join(SOURCES.values())

# task -> split -> model -> ((max, mean) per metric); metrics: em/f1 or accuracy.
_QA = {
    "cmrc2018": {
        "dev": {"BERT": "65.5 64.4 84.5 84.0", "ERNIE": "65.4 64.3 84.7 84.2", "BERT-wwm": "66.3 65.0 85.6 84.7",
                "BERT-wwm-ext": "67.1 65.6 85.7 85.0", "RoBERTa-wwm-ext": "67.4 66.5 87.2 86.5",
                "RoBERTa-wwm-ext-large": "68.5 67.6 88.4 87.9",
                "ELECTRA-small": "63.4 62.9 80.8 80.2", "ELECTRA-base": "68.4 68.0 84.8 84.6",
                "MacBERT-base": "68.5 67.3 87.9 87.1", "MacBERT-large": "70.7 68.6 88.9 88.2",
                "ELECTRA-large": "69.1 68.2 85.2 84.5"},
        "test": {"BERT": "70.0 68.7 87.0 86.3", "ERNIE": "69.4 68.2 86.6 86.1", "BERT-wwm": "70.5 69.1 87.4 86.7",
                 "BERT-wwm-ext": "71.4 70.0 87.7 87.0", "RoBERTa-wwm-ext": "72.6 71.4 89.4 88.8",
                 "RoBERTa-wwm-ext-large": "74.2 72.4 90.6 90.0",
                 "ELECTRA-small": "67.8 67.4 83.4 83.0", "ELECTRA-base": "73.1 72.7 87.1 86.9",
                 "MacBERT-base": "73.2 72.4 89.5 89.2", "MacBERT-large": "74.8 73.2 90.7 90.1",
                 "ELECTRA-large": "73.9 72.8 87.1 86.6"},
    },
    "drcd": {
        "dev": {"BERT": "83.1 82.7 89.9 89.6", "ERNIE": "73.2 73.0 83.9 83.8", "BERT-wwm": "84.3 83.4 90.5 90.2",
                "BERT-wwm-ext": "85.0 84.5 91.2 90.9", "RoBERTa-wwm-ext": "86.6 85.9 92.5 92.2",
                "RoBERTa-wwm-ext-large": "89.6 89.1 94.8 94.4",
                "ELECTRA-small": "79.8 79.4 86.7 86.4", "ELECTRA-base": "87.5 87.0 92.5 92.3",
                "MacBERT-base": "89.4 89.2 94.3 94.1", "MacBERT-large": "91.2 90.8 95.6 95.3",
                "ELECTRA-large": "88.8 88.7 93.3 93.2"},
        "test": {"BERT": "82.2 81.6 89.2 88.8", "ERNIE": "71.9 71.4 82.5 82.3", "BERT-wwm": "82.8 81.8 89.7 89.0",
                 "BERT-wwm-ext": "83.6 83.0 90.4 89.9", "RoBERTa-wwm-ext": "85.6 85.2 92.0 91.7",
                 "RoBERTa-wwm-ext-large": "89.6 88.9 94.5 94.1",
                 "ELECTRA-small": "79.0 78.5 85.8 85.6", "ELECTRA-base": "86.9 86.6 91.8 91.7",
                 "MacBERT-base": "89.5 88.7 93.8 93.5", "MacBERT-large": "91.7 90.9 95.6 95.3",
                 "ELECTRA-large": "88.8 88.2 93.6 93.2"},
    },
}
_CLS = {  # dev max, dev mean, test max, test mean
    "xnli": {"BERT": "77.8 77.4 77.8 77.5", "ERNIE": "79.7 79.4 78.6 78.2", "BERT-wwm": "79.0 78.4 78.2 78.0",
             "BERT-wwm-ext": "79.4 78.6 78.7 78.3", "RoBERTa-wwm-ext": "80.0 79.2 78.8 78.3",
             "RoBERTa-wwm-ext-large": "82.1 81.3 81.2 80.6",
             "ELECTRA-small": "73.3 72.5 73.1 72.6", "ELECTRA-base": "77.9 77.0 78.4 77.8",
             "MacBERT-base": "80.3 79.7 79.3 78.8", "MacBERT-large": "82.4 81.8 81.3 80.6",
             "ELECTRA-large": "81.5 80.8 81.0 80.9"},
    "chnsenticorp": {"BERT": "94.7 94.3 95.0 94.7", "ERNIE": "95.4 94.8 95.4 95.3", "BERT-wwm": "95.1 94.5 95.4 95.0",
                     "BERT-wwm-ext": "95.4 94.6 95.3 94.7", "RoBERTa-wwm-ext": "95.0 94.6 95.6 94.8",
                     "RoBERTa-wwm-ext-large": "95.8 94.9 95.8 94.9",
                     "ELECTRA-small": "92.8 92.5 94.3 93.5", "ELECTRA-base": "93.8 93.0 94.5 93.5",
                     "MacBERT-base": "95.2 94.8 95.6 94.9", "MacBERT-large": "95.7 95.0 95.9 95.1",
                     "ELECTRA-large": "95.2 94.6 95.3 94.8"},
    "lcqmc": {"BERT": "89.4 88.4 86.9 86.4", "ERNIE": "89.8 89.6 87.2 87.0", "BERT-wwm": "89.4 89.2 87.0 86.8",
              "BERT-wwm-ext": "89.6 89.2 87.1 86.6", "RoBERTa-wwm-ext": "89.0 88.7 86.4 86.1",
              "RoBERTa-wwm-ext-large": "90.4 90.0 87.0 86.8",
              "ELECTRA-small": "86.7 86.3 85.9 85.6", "ELECTRA-base": "90.2 89.8 87.6 87.3",
              "MacBERT-base": "89.5 89.3 87.0 86.5", "MacBERT-large": "90.6 90.3 87.6 87.1",
              "ELECTRA-large": "90.7 90.4 87.3 87.2"},
    "bq": {"BERT": "86.0 85.5 84.8 84.6", "ERNIE": "86.3 85.5 85.0 84.6", "BERT-wwm": "86.1 85.6 85.2 84.9",
           "BERT-wwm-ext": "86.4 85.5 85.3 84.8", "RoBERTa-wwm-ext": "86.0 85.4 85.0 84.6",
           "RoBERTa-wwm-ext-large": "86.3 85.7 85.8 84.9",
           "ELECTRA-small": "83.5 83.0 82.0 81.7", "ELECTRA-base": "84.8 84.7 84.5 84.0",
           "MacBERT-base": "86.0 85.5 85.2 84.9", "MacBERT-large": "86.2 85.7 85.6 85.0",
           "ELECTRA-large": "86.7 86.2 85.1 84.8"},
    "thucnews": {"BERT": "97.7 97.4 97.8 97.6", "ERNIE": "97.6 97.3 97.5 97.3", "BERT-wwm": "98.0 97.6 97.8 97.6",
                 "BERT-wwm-ext": "97.7 97.5 97.7 97.5", "RoBERTa-wwm-ext": "98.3 97.9 97.7 97.5",
                 "RoBERTa-wwm-ext-large": "98.3 97.7 97.8 97.6"},
}
# model -> the SOURCES key its figures are copied from (THUCNews: Chinese-BERT-wwm's rows only).
REFERENCE_MODELS = {
    "BERT": "Chinese-BERT-wwm", "ERNIE": "Chinese-BERT-wwm", "BERT-wwm": "Chinese-BERT-wwm",
    "BERT-wwm-ext": "Chinese-BERT-wwm", "RoBERTa-wwm-ext": "Chinese-BERT-wwm", "RoBERTa-wwm-ext-large": "Chinese-BERT-wwm",
    "ELECTRA-small": "Chinese-ELECTRA", "ELECTRA-base": "Chinese-ELECTRA", "ELECTRA-large": "MacBERT",
    "MacBERT-base": "MacBERT", "MacBERT-large": "MacBERT",
}


def reference() -> dict:
    """{model: {(task, split): {metric: (max, mean)}}} of HFL's published figures."""
    out: dict = {m: {} for m in REFERENCE_MODELS}
    for task, splits in _QA.items():
        for split, rows in splits.items():
            for model, figures in rows.items():
                em_max, em_mean, f1_max, f1_mean = map(float, figures.split())
                out[model][(task, split)] = {"em": (em_max, em_mean), "f1": (f1_max, f1_mean)}
    for task, rows in _CLS.items():
        for model, figures in rows.items():
            dev_max, dev_mean, test_max, test_mean = map(float, figures.split())
            out[model][(task, "dev")] = {"accuracy": (dev_max, dev_mean)}
            out[model][(task, "test")] = {"accuracy": (test_max, test_mean)}
    return out


def load_results(dirs) -> dict:
    """{model label: {(task, split): {metric: (max, mean)}}} from OUT directories' results.json."""
    rows: dict = {}
    for d in dirs:
        path = Path(d) / "results.json" if Path(d).is_dir() else Path(d)
        if not path.is_file():
            raise UsageError(f"{d}: no results.json (expected a `twbert finetune` output directory)")
        try:
            res = json.loads(path.read_text(encoding="utf-8"))
            model = Path(res["model"].rstrip("/"))
            label = f"{model.parent.name}/{model.name}" if model.parent.name else model.name  # RUN/hf, not hf
            if res.get("opencc") not in (None, "s2twp"):
                label += f" [{res['opencc']}]"
            if not res.get("protocol", {}).get("stride", True):
                label += " [no-stride]"
            row = rows.setdefault(label, {})
            for split in ("dev", "test"):
                for metric, best in res["max"].get(split, {}).items():
                    row.setdefault((res["task"], split), {})[metric] = (best, res["mean"][split][metric])
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{path}: not a twbert finetune results.json ({e})") from None
    return rows


def _cell(metrics: dict | None) -> str:
    if not metrics:
        return "-"
    fmt = lambda pair: f"{pair[0]:.1f} ({pair[1]:.1f})"
    if "em" in metrics:
        return f"{fmt(metrics['em'])} / {fmt(metrics['f1'])}"
    return fmt(metrics["accuracy"])


def _sources(models) -> str:
    """The citation of the reference rows shown: each source once, in SOURCES' order."""
    used = {REFERENCE_MODELS[m] for m in models}
    return "HFL, " + "; ".join(v for k, v in SOURCES.items() if k in used) if used else SOURCE


def render_table(dirs, reference_rows: bool = True) -> tuple[str, str]:
    """(terminal text, Markdown) of the table."""
    rows = load_results(dirs)
    columns = sorted({key for row in rows.values() for key in row},
                     key=lambda k: (list(_QA) + list(_CLS) + [k[0]]).index(k[0]) * 2 + (k[1] == "test"))
    if reference_rows:
        ref = reference()
        if columns:
            ref = {m: r for m, r in ref.items() if any(k in r for k in columns)}
        rows = {**{f"{m} (HFL)": r for m, r in ref.items()}, **rows}
    header = ["model"] + [f"{task} {split}" for task, split in columns]
    body = [[label] + [_cell(row.get(col)) for col in columns] for label, row in rows.items()]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    terminal = "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body])
    md = "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
                   + ["| " + " | ".join(r) + " |" for r in body])
    note = ("\nmax (mean) over seeds; EM / F1 for span QA, accuracy for classification."
            + (f"\nReference rows: {_sources(ref)}." if reference_rows else ""))
    return terminal + note, md + "\n" + note.replace("\n", "\n\n").lstrip("\n")

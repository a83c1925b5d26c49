"""A small run directory written by real datatrove steps: documents/, stats.json and, as `twbert build`
writes them with `output.removed: true`, the dropped documents under removed/<stage>/<step>/ (datatrove
JSONL, the reason in metadata["filter_reason"])."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

WORDS = ["臺北", "今天", "天氣", "很好", "我們", "一起", "去", "公園", "散步", "看書"]


class ToyQuality(BaseFilter):
    """Drops short documents (too_short) and documents with a digit (has_digit)."""

    name = "🧪 toy quality"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if len(doc.text) < 12:
            return False, "too_short"
        if any(ch.isdigit() for ch in doc.text):
            return False, "has_digit"
        return True


class ToyLength(BaseFilter):
    """Drops documents longer than 30 characters, as `reason` (None: without one, which datatrove allows)."""

    name = "📏 toy length"

    def __init__(self, reason: str | None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.reason = reason

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if len(doc.text) <= 30:
            return True
        return (False, self.reason) if self.reason else False


def texts(n: int) -> list[str]:
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(1 + i % 19)]
        text = "".join(words) + ("。" if i % 4 else f"第{i}號。")
        out.append(text)
    return out


def make_run(root: Path, n: int = 80, tasks: int = 2, removed: bool = True, length_reason: str | None = "too_long") -> dict:
    """Run the toy ingest stage into `root` (a run directory); returns what it should have dropped."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.pipeline.funnel import collect

    inputs = root / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    docs = [{"text": t, "id": f"toy-{i}", "metadata": {"source": "web"}} for i, t in enumerate(texts(n))]
    for k in range(tasks):
        with gzip.open(inputs / f"{k:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for d in docs[k::tasks]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")

    def exclusions(step: str):
        return JsonlWriter(str(root / "removed" / "ingest" / step)) if removed else None

    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(inputs)),
            ToyQuality(exclusion_writer=exclusions("toy_quality")),
            ToyLength(length_reason, exclusion_writer=exclusions("toy_length")),
            JsonlWriter(str(root / "documents")),
        ],
        tasks=tasks, workers=1, logging_dir=str(root / "logs" / "ingest"),
    ).run()
    stats = collect(["ingest"], root / "logs")
    (root / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    q = ToyQuality()
    reasons = [q.filter(Document(text=d["text"], id=d["id"])) for d in docs]
    dropped_q = [r[1] for r in reasons if r is not True]
    passed = [d for d, r in zip(docs, reasons) if r is True]
    return {"read": n, "too_short": dropped_q.count("too_short"), "has_digit": dropped_q.count("has_digit"),
            "long": sum(len(d["text"]) > 30 for d in passed), "kept": sum(len(d["text"]) <= 30 for d in passed)}

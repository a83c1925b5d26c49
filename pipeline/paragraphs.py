"""Exact dedup of paragraphs repeated across documents (site boilerplate, copied disclaimers).

Runs after near-duplicate removal, on its survivors, as three stages:

    dedup_paragraph_hashes   JsonlReader -> ParagraphHashes        (N tasks)  hash every paragraph
    dedup_paragraph_match    ParagraphMatch                        (S tasks)  one hash range each
    dedup_paragraphs         JsonlReader -> ParagraphFilter -> JsonlWriter (N tasks)

A paragraph is a line of the text. Two paragraphs are the same when their normalised forms
(twbert.pipeline.shingles: NFKC, script folded, letters and digits only) are equal; paragraphs
shorter than `min_chars` normalised characters are never touched. The first document holding a
paragraph (in task, then document order) keeps it, every later document loses it; repeats inside
one document are left alone (that is the quality filter's business). A document left with no text
is dropped with reason `repeated_paragraphs`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from twbert.pipeline.shingles import Shingler

RECORD = np.dtype([("hash", "<u8"), ("doc", "<u4"), ("para", "<u4")])
REMOVE = np.dtype([("doc", "<u4"), ("para", "<u4")])


class ParagraphHashes(PipelineStep):
    """Write (hash, document index, paragraph index) of every long-enough paragraph, by hash shard."""

    type = "🫂 - DEDUP"
    name = "🧱 paragraph hashes"

    def __init__(self, output_folder: DataFolderLike, shards: int, min_chars: int, fold: str | None = "t2s"):
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.shards = int(shards)
        self.min_chars = int(min_chars)
        self.shingler = Shingler(1, fold)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        rows: list[tuple[int, int, int]] = []
        chunks = []  # rows packed into arrays every 2**20 paragraphs: tuples cost ~7x the memory
        with self.track_time():
            for doc_idx, doc in enumerate(data):
                for p, para in enumerate(doc.text.split("\n")):
                    norm = self.shingler.normalize(para)
                    if len(norm) >= self.min_chars:
                        h = int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little")
                        rows.append((h, doc_idx, p))
                        self.stat_update("paragraphs_hashed")
                if len(rows) >= 1 << 20:
                    chunks.append(np.array(rows, dtype=RECORD))
                    rows.clear()
            chunks.append(np.array(rows, dtype=RECORD))
            recs = np.concatenate(chunks)
            shard = recs["hash"] % np.uint64(self.shards)
            for s in range(self.shards):
                part = np.sort(recs[shard == s], order=["hash", "doc", "para"])
                with self.output_folder.open(f"{s:03d}/{rank:05d}.bin", "wb") as f:
                    f.write(part.tobytes())


class ParagraphMatch(PipelineStep):
    """For one hash shard: find paragraphs whose hash a previous document already holds."""

    type = "🫂 - DEDUP"
    name = "🧱 paragraph matches"

    def __init__(self, input_folder: DataFolderLike, output_folder: DataFolderLike):
        super().__init__()
        self.input_folder = get_datafolder(input_folder)
        self.output_folder = get_datafolder(output_folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        with self.track_time():
            files = sorted(self.input_folder.list_files(subdirectory=f"{rank:03d}"))
            parts, tasks = [], []
            for name in files:
                with self.input_folder.open(name, "rb") as f:
                    recs = np.frombuffer(f.read(), dtype=RECORD)
                parts.append(recs)
                tasks.append(np.full(len(recs), int(Path(name).stem), dtype=np.uint32))
            if not parts:
                return
            recs, task = np.concatenate(parts), np.concatenate(tasks)
            order = np.lexsort((recs["para"], recs["doc"], task, recs["hash"]))
            recs, task = recs[order], task[order]
            # First record of each hash names its owner document; the others of that hash not in it go.
            start = np.ones(len(recs), dtype=bool)
            start[1:] = recs["hash"][1:] != recs["hash"][:-1]
            first = np.maximum.accumulate(np.where(start, np.arange(len(recs)), 0))
            drop = (task != task[first]) | (recs["doc"] != recs["doc"][first])
            self.stat_update("repeated_paragraphs", value=int(drop.sum()))
            for t in np.unique(task[drop]).tolist():
                sel = drop & (task == t)
                out = np.empty(int(sel.sum()), dtype=REMOVE)
                out["doc"], out["para"] = recs["doc"][sel], recs["para"][sel]
                with self.output_folder.open(f"{t:05d}/{rank:03d}.bin", "wb") as f:
                    f.write(out.tobytes())


class ParagraphFilter(BaseFilter):
    """Remove the matched paragraphs; drop documents left empty (`repeated_paragraphs`).

    The exclusion writer keeps a dropped document's text as it came, every paragraph a repeat.
    """

    type = "🫂 - DEDUP"
    name = "🧱 paragraph filter"

    def __init__(self, input_folder: DataFolderLike, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.data_folder = get_datafolder(input_folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        # Matches name documents by their index in this task's input: BaseFilter.run calls filter()
        # once per document, in order.
        self._remove: dict[int, set[int]] = {}
        self._idx = -1
        if self.data_folder.isdir(f"{rank:05d}"):
            for name in self.data_folder.list_files(subdirectory=f"{rank:05d}"):
                with self.data_folder.open(name, "rb") as f:
                    for d, p in np.frombuffer(f.read(), dtype=REMOVE).tolist():
                        self._remove.setdefault(d, set()).add(p)
        yield from super().run(data, rank, world_size)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        self._idx += 1
        gone = self._remove.get(self._idx)
        if not gone:
            return True
        self.stat_update("paragraphs_removed", value=len(gone))
        text = "\n".join(p for i, p in enumerate(doc.text.split("\n")) if i not in gone).strip()
        if not text:
            return False, "repeated_paragraphs"
        doc.text = text
        self.stat_update("documents_trimmed")
        return True


def stages(cfg: dict, input_dir, output_dir, work_dir) -> list:
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.pipeline.removed import exclusion_writer
    from twbert.stage import Stage

    dcfg = cfg["dedup"]
    pcfg = dcfg["paragraphs"]
    work = Path(work_dir)
    tasks = int(cfg["executor"]["tasks"])
    shards = int(pcfg["shards"])
    compression = (cfg.get("output") or {}).get("compression")
    removed = exclusion_writer(cfg, "dedup_paragraphs", ParagraphFilter.name)
    return [
        Stage("dedup_paragraph_hashes", [JsonlReader(str(input_dir), add_file_path=False),
                                         ParagraphHashes(str(work / "hashes"), shards, pcfg["min_chars"],
                                                         dcfg.get("fold"))], tasks),
        Stage("dedup_paragraph_match", [ParagraphMatch(str(work / "hashes"), str(work / "remove"))], shards),
        Stage("dedup_paragraphs", [JsonlReader(str(input_dir), add_file_path=False), ParagraphFilter(str(work / "remove"), removed),
                                   JsonlWriter(str(output_dir), compression=compression)], tasks),
    ]

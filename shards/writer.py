"""The shards stage as datatrove steps: documents in, one MDS dataset per source x tier out.

    stage `shards`        JsonlReader(OUT/documents) -> TokenizeSegmentChunk -> MDSShardWriter   (N tasks)
    stage `shards_merge`  MergeShardIndexes                                                    (1 task)

Each writer task writes its own MDS directory per sub-dataset, `OUT/shards/<source>-<tier>/part-<rank>/`,
and a small stats file `OUT/shards/_tasks/part-<rank>.json`. The merge stage, a one-task stage so it
runs the same way locally, on Slurm and on Ray, merges the part indexes of every sub-dataset into
`OUT/shards/<source>-<tier>/index.json` (`shards/mds.py`'s `merge_index`, parts in rank order) and the
task stats into `OUT/shards/meta.json`. Nothing written depends on time or on the order tasks finish,
so the same input and config give byte-identical shards, indexes and meta.json.

The tokenizer is prepared when the stages are planned, into `OUT/shards/tokenizer/`, and every task
loads it from there: the shards and the tokenizer that made them always travel together.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from twbert.errors import UsageError
from twbert.shards.format import COLUMNS, HASH, TASKS_DIR, TOKENIZER_DIR, histogram_edges, new_meta, write_json, write_meta
from twbert.stage import Stage

_NAME = re.compile(r"^[a-z0-9_]+$")


class TokenizeSegmentChunk(PipelineStep):
    """Tokenise each document, segment it into words, cut it into chunks; yield one Document per chunk.

    Stats (per document): total, forwarded, dropped, dropped_empty (blank text), dropped_tier_drop.
    Extras: chunks, tokens, tokens_<source>_<tier>, sentences_split, tails_merged, tails_dropped,
    tokens_dropped_tail, chunk_len_le_<n> (chunk-length histogram).
    Each chunk's metadata carries doc_id, chunk_index, source, tier, weight, input_ids, word_ids.
    `exclusion_writer` keeps each dropped document with its reason, as a filter's would (pipeline/removed.py).
    """

    name = "✂️ tokenise + segment + chunk"
    type = "🔢 - TOKENIZER"

    def __init__(
        self,
        tokenizer_dir: str,
        max_len: int = 8192,
        min_tail_tokens: int = 64,
        tail: str = "merge",
        segmenter: str = "rjieba",
        dictionary: str = "tw",
        hmm: bool = True,
        default_tier: str = "tw",
        exclusion_writer=None,
    ):
        super().__init__()
        self.exclusion_writer = exclusion_writer
        from twbert.shards.chunking import TAIL_POLICIES
        from twbert.shards.segment import BACKENDS

        if max_len < 3:
            raise ValueError(f"max_len must leave room for [CLS] and [SEP] and one token, got {max_len}")
        if tail not in TAIL_POLICIES:
            raise ValueError(f"shards.tail must be one of {', '.join(TAIL_POLICIES)}, not {tail!r}")
        if segmenter not in BACKENDS:
            raise ValueError(f"shards.segmenter must be one of {', '.join(BACKENDS)}, not {segmenter!r}")
        self.tokenizer_dir, self.max_len = str(tokenizer_dir), max_len
        self.min_tail_tokens, self.tail = min_tail_tokens, tail
        self.segmenter, self.dictionary, self.hmm = segmenter, dictionary, hmm
        self.default_tier = default_tier
        self.edges = histogram_edges(max_len - 2)

    def chunks(self, doc: Document, encode, seg) -> list[Document]:
        """The chunk Documents of one document (none for a blank one)."""
        from twbert.shards.chunking import ChunkStats, chunk
        from twbert.shards.segment import token_word_ids

        text = doc.text
        if not text.strip():  # whitespace tokenises, but is no content to learn from
            return []
        enc = encode(text)
        ids = enc.ids  # each read of the attribute builds a new list
        if not ids:
            return []
        ids = np.asarray(ids, dtype=np.uint32)
        # flattened first: numpy converts a list of tuples ~1.5x slower than a flat iterator
        offsets = np.fromiter(chain.from_iterable(enc.offsets), dtype=np.int64, count=2 * len(ids)).reshape(-1, 2)
        words = token_word_ids(seg.word_starts(text), offsets[:, 0], offsets[:, 1])
        stats = ChunkStats()
        spans = chunk(text, offsets[:, 0], offsets[:, 1], words, self.max_len - 2, self.min_tail_tokens, self.tail, stats)
        self.stat_update("tails_merged", value=stats.tails_merged)
        self.stat_update("tails_dropped", value=stats.tails_dropped)
        self.stat_update("tokens_dropped_tail", value=stats.tokens_dropped)
        self.stat_update("sentences_split", value=stats.sentences_split)
        meta = doc.metadata
        out = []
        for i, (a, b) in enumerate(spans):
            out.append(
                Document(
                    text=text[offsets[a, 0] : offsets[b - 1, 1]],
                    id=f"{doc.id}/{i}",
                    metadata={
                        "doc_id": str(doc.id),
                        "chunk_index": i,
                        "source": meta["source"],
                        "tier": meta.get("tier") or self.default_tier,
                        "weight": float(meta.get("weight", 1.0)),
                        "input_ids": ids[a:b],
                        "word_ids": (words[a:b] - words[a]).astype(np.int32),  # from 0 per chunk
                        # Per-document facts ride on the first chunk, for the writer's task stats.
                        **({"sentences_split": stats.sentences_split} if i == 0 else {}),
                    },
                )
            )
        return out

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from twbert.shards.segment import Segmenter
        from twbert.shards.tokenizer import content_encoder, load_prepared

        tok, _ = load_prepared(self.tokenizer_dir)
        seg = Segmenter(self.segmenter, self.dictionary, self.hmm)
        with self.exclusion_writer or contextlib.nullcontext() as excluded:
            yield from self._chunked(data, content_encoder(tok), seg, excluded, rank)

    def _chunked(self, data: DocumentsPipeline, encode, seg, excluded, rank: int) -> DocumentsPipeline:
        def drop(doc: Document, reason: str) -> None:
            self.stat_update("dropped", f"dropped_{reason}")
            if excluded is not None:
                doc.metadata["filter_reason"] = reason  # as datatrove's BaseFilter does
                excluded.write(doc, rank)

        for doc in data:
            self.stat_update("total")
            source = doc.metadata.get("source")
            tier = doc.metadata.get("tier") or self.default_tier
            if not isinstance(source, str) or not _NAME.match(source) or not _NAME.match(str(tier)):
                raise ValueError(
                    f"document {doc.id!r} ({doc.metadata.get('file_path', '?')}): metadata needs a `source` and "
                    f"`tier` of [a-z0-9_] (they name the sub-dataset), got source={source!r} tier={tier!r}"
                )
            if tier == "drop":
                drop(doc, "tier_drop")
                continue
            with self.track_time():
                chunks = self.chunks(doc, encode, seg)
            if not chunks:
                drop(doc, "empty")
                continue
            self.stat_update("forwarded")
            self.stat_update("chunks", value=len(chunks))
            for c in chunks:
                n = len(c.metadata["input_ids"])
                self.stat_update("tokens", f"tokens_{source}_{tier}", value=n)
                self.stat_update(f"chunk_len_le_{self.edges[np.searchsorted(self.edges, n)]}")
                yield c


class MDSShardWriter(PipelineStep):
    """Write chunks to this task's MDS directory of their sub-dataset: `<out>/<source>-<tier>/part-<rank>/`.

    Stats: total / forwarded count documents (a document's chunks arrive together, chunk 0 first);
    extras: chunks, tokens, and shards_written. Also writes `<out>/_tasks/part-<rank>.json`.
    """

    name = "💽 MDS writer"
    type = "💽 - WRITER"

    def __init__(self, out: str, max_len: int = 8192, compression: str = "zstd", size_limit: int = 1 << 26):
        super().__init__()
        self.out, self.max_len = str(out), max_len
        self.compression, self.size_limit = compression, size_limit
        self.edges = histogram_edges(max_len - 2)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from twbert.shards.mds import MDSWriter

        out = Path(self.out)
        part = f"part-{rank:05d}"
        # A rerun of a task that died midway starts its parts over.
        for stale in sorted(out.glob(f"*/{part}")):
            shutil.rmtree(stale)
        (out / TASKS_DIR / f"{part}.json").unlink(missing_ok=True)
        writers: dict[str, MDSWriter] = {}
        subsets: dict[str, dict] = {}
        hist = [0] * len(self.edges)
        split = 0
        try:
            for doc in data:
                m = doc.metadata
                key = f"{m['source']}-{m['tier']}"
                if key not in writers:
                    writers[key] = MDSWriter(
                        out=str(out / key / part),
                        columns=COLUMNS,
                        compression=self.compression,
                        hashes=[HASH],
                        size_limit=self.size_limit,
                    )
                    subsets[key] = {"documents": 0, "chunks": 0, "tokens": 0, "weight_sum": 0.0}
                n = len(m["input_ids"])
                if m["chunk_index"] == 0:
                    self.stat_update("total", "forwarded")
                    subsets[key]["documents"] += 1
                    subsets[key]["weight_sum"] += float(m["weight"])
                    split += m.get("sentences_split", 0)
                with self.track_time():
                    writers[key].write(
                        {
                            "input_ids": m["input_ids"],
                            "word_ids": m["word_ids"],
                            "doc_id": m["doc_id"],
                            "chunk_index": m["chunk_index"],
                            "source": m["source"],
                            "tier": m["tier"],
                            "weight": np.float32(m["weight"]),
                        }
                    )
                self.stat_update("chunks")
                self.stat_update("tokens", value=n)
                subsets[key]["chunks"] += 1
                subsets[key]["tokens"] += n
                hist[int(np.searchsorted(self.edges, n))] += 1
        finally:
            for w in writers.values():
                w.finish()
        facts = {"datasets": subsets, "chunk_length_histogram": hist, "sentences_split": split}
        (out / TASKS_DIR).mkdir(parents=True, exist_ok=True)
        write_json(out / TASKS_DIR / f"{part}.json", facts)
        return
        yield  # a generator, so datatrove runs it as a step that ends the pipeline


class MergeShardIndexes(PipelineStep):
    """Merge every sub-dataset's part indexes into its `index.json`, and the task stats into `meta.json`.

    Stats: total / forwarded count sub-datasets merged; extras: shards, chunks, tokens.
    """

    name = "🔗 merge MDS indexes"
    type = "💽 - WRITER"

    def __init__(self, out: str, tasks: int, meta: dict):
        super().__init__()
        self.out, self.tasks, self.meta = str(out), tasks, meta

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from twbert.shards.mds import merge_index

        out = Path(self.out)
        task_files = sorted((out / TASKS_DIR).glob("part-*.json"))
        expected = [f"part-{r:05d}.json" for r in range(self.tasks)]
        if [f.name for f in task_files] != expected:
            raise RuntimeError(
                f"{out / TASKS_DIR}: expected the stats of tasks 0..{self.tasks - 1}, found "
                f"{[f.name for f in task_files]}: the shards were written with another task count or a task did "
                f"not finish. Remove {out} and the shards logs and rebuild."
            )
        datasets: dict[str, dict] = {}
        hist = [0] * len(self.meta["chunk_length_histogram_edges"])
        split = 0
        for f in task_files:
            facts = json.loads(f.read_text(encoding="utf-8"))
            split += facts["sentences_split"]
            hist = [a + b for a, b in zip(hist, facts["chunk_length_histogram"])]
            for key, d in facts["datasets"].items():
                acc = datasets.setdefault(key, {"documents": 0, "chunks": 0, "tokens": 0, "weight_sum": 0.0})
                for k in acc:
                    acc[k] += d[k]
        for key in sorted(datasets):
            parts = [out / key / f"part-{r:05d}" / "index.json" for r in range(self.tasks)]
            parts = [str(p) for p in parts if p.is_file()]
            self.stat_update("total")
            merge_index(parts, str(out / key))
            index = json.loads((out / key / "index.json").read_text(encoding="utf-8"))
            samples = sum(s["samples"] for s in index["shards"])
            if samples != datasets[key]["chunks"]:
                raise RuntimeError(f"{out / key}: index holds {samples} samples, the writers wrote {datasets[key]['chunks']}")
            datasets[key]["shards"] = len(index["shards"])
            # The variant policy's sampling weight of this sub-dataset (one per tier): the loader's
            # default stream weight, so Taiwan prioritisation set at build time reaches sampling.
            d = datasets[key]
            d["weight"] = round(d.pop("weight_sum") / d["documents"], 6) if d["documents"] else 1.0
            self.stat_update("forwarded")
            self.stat_update("shards", value=len(index["shards"]))
            self.stat_update("chunks", value=samples)
            self.stat_update("tokens", value=datasets[key]["tokens"])
        # A sub-dataset an earlier build wrote but this one did not must not stay readable.
        for stale in sorted(out.glob("*/index.json")):
            if stale.parent.name not in datasets:
                shutil.rmtree(stale.parent)
        meta = dict(self.meta)
        meta["datasets"] = {k: datasets[k] for k in sorted(datasets)}
        meta["documents"] = sum(d["documents"] for d in datasets.values())
        meta["chunks"] = sum(d["chunks"] for d in datasets.values())
        meta["tokens"] = sum(d["tokens"] for d in datasets.values())
        meta["chunk_length_histogram"] = {"le": meta.pop("chunk_length_histogram_edges"), "chunks": hist}
        meta["sentences_split"] = split
        write_meta(out, meta)
        return
        yield


def install_tokenizer(spec: str, dest: Path) -> dict:
    """Prepare (or copy, if already prepared) the tokenizer `spec` into `dest`; returns its facts.

    Refuses to replace a different tokenizer under existing shards: they would mix two vocabularies.
    """
    from twbert.shards.tokenizer import INFO_FILE, prepare

    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    src = Path(spec)
    try:
        if src.is_dir() and (src / INFO_FILE).is_file():
            shutil.copytree(src, tmp)
        else:
            prepare(spec, tmp)
    except (OSError, ValueError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"shards.tokenizer {spec!r}: {e}") from None
    if (dest / "tokenizer.json").is_file():
        if (dest / "tokenizer.json").read_bytes() != (tmp / "tokenizer.json").read_bytes():
            if any(dest.parent.glob("*/part-*")):
                shutil.rmtree(tmp)
                raise UsageError(
                    f"{dest.parent} holds shards made with another tokenizer than {spec!r}: "
                    f"remove {dest.parent} and its logs (logs/shards*) to rebuild them"
                )
        shutil.rmtree(dest)
    elif dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return json.loads((dest / INFO_FILE).read_text(encoding="utf-8"))


def stages(cfg: dict, documents_dir, shards_dir, removed: Callable[[str], object] | None = None) -> list[Stage]:
    """The shards stages for `cfg["shards"]`: tokenise + write (N tasks), then merge (1 task).

    `removed(step)` gives the exclusion writer a dropping step keeps its documents in (the build's audit
    trail, OUT/removed/shards/<step>/); the build passes it, so shards/ needs nothing from pipeline/.
    """
    import importlib.util

    from datatrove.pipeline.readers import JsonlReader

    from twbert.shards.mds import check_compression

    sc = cfg["shards"]
    if sc["segmenter"] in ("rjieba", "jieba_fast_dat", "jieba") and not importlib.util.find_spec(sc["segmenter"]):
        raise UsageError(f"shards.segmenter is {sc['segmenter']} but it is not installed: "
                         f"pip install {sc['segmenter'].replace('_', '-')}, or set shards.segmenter: jieba")
    shards_dir = Path(shards_dir)
    tok_dir = shards_dir / TOKENIZER_DIR
    try:
        check_compression(sc["compression"])
        step = TokenizeSegmentChunk(
            str(tok_dir),
            max_len=int(sc["max_len"]),
            min_tail_tokens=int(sc["min_tail_tokens"]),
            tail=sc["tail"],
            segmenter=sc["segmenter"],
            dictionary=sc["dictionary"],
            hmm=bool(sc["hmm"]),
            default_tier=sc["default_tier"],
            exclusion_writer=removed(TokenizeSegmentChunk.name) if removed else None,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    shards_dir.mkdir(parents=True, exist_ok=True)
    info = install_tokenizer(str(sc["tokenizer"]), tok_dir)
    tasks = int(sc.get("tasks") or cfg["executor"]["tasks"])
    max_len = int(sc["max_len"])
    meta = new_meta(max_len, info, segmenter={"backend": sc["segmenter"], "dictionary": sc["dictionary"], "hmm": sc["hmm"]},
                    chunking={"min_tail_tokens": sc["min_tail_tokens"], "tail": sc["tail"]})
    write = [
        JsonlReader(str(documents_dir), recursive=True),
        step,
        MDSShardWriter(str(shards_dir), max_len=max_len, compression=sc["compression"], size_limit=int(sc["size_limit"])),
    ]
    merge = [MergeShardIndexes(str(shards_dir), tasks=tasks, meta=meta)]
    return [Stage("shards", write, tasks, verify=part_check(shards_dir)),
            Stage("shards_merge", merge, 1, {"workers": 1}, verify=merged_check(shards_dir))]


def _read_json(path: Path):
    """(object, None) or (None, why not)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"{path} is missing"
    except ValueError as e:
        return None, f"{path} is not valid JSON ({e})"


def _shard_files_problem(ds_dir: Path, index: dict) -> str | None:
    """Every shard of an MDS index is on disk at its recorded size (compressed, decompressed, or both:
    streaming decompresses `.mds.zstd` beside itself on read)."""
    for shard in index.get("shards", []):
        present = False
        for form in ("raw_data", "zip_data"):
            info = shard.get(form)
            if not info:
                continue
            f = ds_dir / info["basename"]
            if f.is_file():
                if f.stat().st_size != info["bytes"]:
                    return f"{f} has {f.stat().st_size} bytes, its index says {info['bytes']}"
                present = True
        if not present:
            form = shard.get("zip_data") or shard["raw_data"]
            return f"{ds_dir / form['basename']} is missing"
    return None


def part_check(shards_dir) -> Callable[[int, list], str | None]:
    """The shards stage's output check (twbert/outputs.py): task `rank`'s facts file, and for each
    sub-dataset it wrote, its part index and every shard file at its recorded size and chunk count."""
    shards_dir = Path(shards_dir)

    def verify(rank: int, task_stats: list) -> str | None:
        part = f"part-{rank:05d}"
        facts, why = _read_json(shards_dir / TASKS_DIR / f"{part}.json")
        if why:
            return why
        for key, d in facts["datasets"].items():
            index_file = shards_dir / key / part / "index.json"
            index, why = _read_json(index_file)
            if why:
                return why
            why = _shard_files_problem(index_file.parent, index)
            if why:
                return why
            samples = sum(sh["samples"] for sh in index["shards"])
            if samples != d["chunks"]:
                return f"{index_file} lists {samples} chunks, the task wrote {d['chunks']}"
        return None

    return verify


def merged_check(shards_dir) -> Callable[[int, list], str | None]:
    """The merge stage's output check: meta.json, and every sub-dataset's merged index.json it lists."""
    shards_dir = Path(shards_dir)

    def verify(rank: int, task_stats: list) -> str | None:
        meta, why = _read_json(shards_dir / "meta.json")
        if why:
            return why
        for key, d in meta.get("datasets", {}).items():
            index, why = _read_json(shards_dir / key / "index.json")
            if why:
                return why
            if len(index.get("shards", [])) != d.get("shards"):
                return f"{shards_dir / key / 'index.json'} lists {len(index['shards'])} shards, meta.json {d.get('shards')}"
        return None

    return verify

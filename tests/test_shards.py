"""The shards stages end to end: datatrove documents -> real stages -> MDS read back by plain streaming."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _shards_text import SENTENCES, documents

from twbert.config import load

LONG_SENTENCE = "這段話沒有任何句號而且一直延續下去" * 12  # no sentence end: must be split at token level


def write_documents(dirpath: Path) -> list[dict]:
    """Two datatrove JSONL.gz files of web and wiki documents, with tiers, an empty and a long one."""
    rows = []
    texts = documents(24, seed=7)
    for i, text in enumerate(texts):
        source = "wiki" if i % 3 == 0 else "web"
        meta = {"source": source, "tier": ["tw", "tw_converted", "other"][(i // 2) % 3] if source == "web" else "tw", "weight": 1.0 + (i % 3) / 2}
        rows.append({"text": text, "id": f"doc-{i}", "metadata": meta})
    rows.append({"text": "   \n ", "id": "empty-1", "metadata": {"source": "web", "tier": "tw", "weight": 1.0}})
    long = "\n".join("".join(SENTENCES[(k + j) % len(SENTENCES)] for j in range(9)) for k in range(12))
    rows.append({"text": long[:400] + LONG_SENTENCE + long[400:], "id": "long-1", "metadata": {"source": "wiki"}})  # no tier: default
    dirpath.mkdir(parents=True, exist_ok=True)
    for k in range(2):
        with gzip.open(dirpath / f"{k:05d}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for row in rows[k::2]:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from twbert.shards.tokenizer import train

    tmp = tmp_path_factory.mktemp("tok")
    (tmp / "corpus.txt").write_text("\n".join(documents(60, seed=1)), encoding="utf-8")
    train([str(tmp / "corpus.txt")], vocab_size=800, out_dir=tmp / "tok", show_progress=False)
    return tmp / "tok"


def build_shards(out: Path, tokenizer_dir: Path, documents_dir: Path, **shards):
    from datatrove.executor import LocalPipelineExecutor

    from twbert.shards import writer

    cfg = load("build", overrides={"out": str(out), "executor": {"tasks": 2, "workers": 1},
                                   "shards": {"tokenizer": str(tokenizer_dir), "max_len": 130, "min_tail_tokens": 16, **shards}})
    stages = writer.stages(cfg, documents_dir, out / "shards")
    assert [s.name for s in stages] == ["shards", "shards_merge"] and stages[1].tasks == 1
    for st in stages:
        LocalPipelineExecutor(pipeline=st.pipeline, tasks=st.tasks, workers=1, logging_dir=str(out / "logs" / st.name)).run()
    return cfg


def read_back(root: Path) -> dict[str, list[dict]]:
    """Every sub-dataset, read with plain streaming.StreamingDataset: no twbert code in the read path."""
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    out = {}
    for index in sorted(root.glob("*/index.json")):
        ds = StreamingDataset(local=str(index.parent), shuffle=False, batch_size=1)
        out[index.parent.name] = [ds[i] for i in range(len(ds))]
    return out


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_shards_end_to_end(tmp_path, tokenizer_dir):
    from tokenizers import Tokenizer

    from twbert.shards.segment import Segmenter

    rows = write_documents(tmp_path / "documents")
    build_shards(tmp_path / "run", tokenizer_dir, tmp_path / "documents")
    root = tmp_path / "run" / "shards"
    data = read_back(root)
    assert set(data) == {"web-tw", "web-tw_converted", "web-other", "wiki-tw"}
    tok = Tokenizer.from_file(str(root / "tokenizer" / "tokenizer.json"))
    info = json.loads((root / "tokenizer" / "twbert_tokenizer.json").read_text())
    specials = {info[f"{r}_token_id"] for r in ("pad", "unk", "cls", "sep", "mask")}
    seg = Segmenter("jieba")  # the reference implementation checks the configured rjieba's words
    by_id = {r["id"]: r for r in rows}
    chunks: dict[str, list[dict]] = {}
    for name, samples in data.items():
        for s in samples:
            assert f"{s['source']}-{s['tier']}" == name
            assert s["input_ids"].dtype == np.uint32 and s["word_ids"].dtype == np.int32
            assert 0 < len(s["input_ids"]) <= 128 and len(s["word_ids"]) == len(s["input_ids"])
            assert not specials & set(s["input_ids"].tolist())  # content tokens only
            chunks.setdefault(s["doc_id"], []).append(s)
    assert "empty-1" not in chunks
    assert set(chunks) == set(by_id) - {"empty-1"}
    for doc_id, cs in chunks.items():
        row = by_id[doc_id]
        assert [c["chunk_index"] for c in cs] == list(range(len(cs)))
        assert {c["weight"] for c in cs} == {np.float32(row["metadata"].get("weight", 1.0))}
        # the chunks decode to the document, in order; each decodes to its own slice of it
        texts = [tok.decode(c["input_ids"].tolist()) for c in cs]
        assert "".join(texts) == row["text"]
        # word_ids: the segmentation of the document, mapped through token offsets, renumbered per chunk
        enc = tok.encode(row["text"], add_special_tokens=False)
        assert np.concatenate([c["input_ids"] for c in cs]).tolist() == enc.ids
        # word_ids: units that decode to whole words of the segmentation, from 0 per chunk
        word_starts = set(seg.word_starts(row["text"]).tolist())
        offsets = enc.offsets
        pos = 0
        for c in cs:
            n, w = len(c["input_ids"]), c["word_ids"]
            assert w[0] == 0 and set(np.diff(w).tolist()) <= {0, 1}
            units = np.split(np.arange(n), np.flatnonzero(np.diff(w)) + 1)
            pieces = [tok.decode(c["input_ids"][u].tolist()) for u in units]
            assert "".join(pieces) == tok.decode(c["input_ids"].tolist())
            assert not any("\ufffd" in p for p in pieces), "a masking unit splits a character"
            for u in units:  # every unit begins at a word start (or where the chunk begins) ...
                start = offsets[pos + u[0]][0]
                assert start in word_starts or u[0] == 0
            for i in range(1, n):  # ... and every clean token boundary at a word start begins one
                if offsets[pos + i][0] in word_starts and offsets[pos + i][0] >= offsets[pos + i - 1][1]:
                    assert w[i] == w[i - 1] + 1
            pos += n
    # the long document was cut at sentence boundaries, except its one over-long sentence
    long = chunks["long-1"]
    assert len(long) >= 3 and long[0]["tier"] == "tw"
    ends = [tok.decode(c["input_ids"].tolist())[-1] for c in long[:-1]]
    assert sum(e not in "。！？；…」\n" for e in ends) >= 1  # the forced cut(s)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["sentences_split"] == 1 and meta["max_len"] == 130
    assert meta["documents"] == len(chunks) and meta["chunks"] == sum(map(len, chunks.values()))
    assert meta["tokens"] == sum(len(c["input_ids"]) for cs in chunks.values() for c in cs)
    assert sum(meta["chunk_length_histogram"]["chunks"]) == meta["chunks"]
    for name, samples in data.items():
        assert meta["datasets"][name]["tokens"] == sum(len(s["input_ids"]) for s in samples)
    index = json.loads((root / "web-tw" / "index.json").read_text())
    assert all(s["compression"] == "zstd" and s["hashes"] == ["xxh64"] for s in index["shards"])
    # stats: every document accounted for in the datatrove stats
    stats = json.loads(next((tmp_path / "run" / "logs" / "shards" / "stats").glob("00000.json")).read_text())
    step = next(s for s in stats if "tokenise" in s["name"])["stats"]
    other = json.loads(next((tmp_path / "run" / "logs" / "shards" / "stats").glob("00001.json")).read_text())
    step2 = next(s for s in other if "tokenise" in s["name"])["stats"]
    total = sum(s["total"]["total"] if isinstance(s["total"], dict) else s["total"] for s in (step, step2))
    assert total == len(rows)


def test_two_runs_are_byte_identical(tmp_path, tokenizer_dir):
    write_documents(tmp_path / "documents")
    build_shards(tmp_path / "a", tokenizer_dir, tmp_path / "documents")
    build_shards(tmp_path / "b", tokenizer_dir, tmp_path / "documents")
    a, b = tree_digest(tmp_path / "a" / "shards"), tree_digest(tmp_path / "b" / "shards")
    assert a == b and any(k.endswith(".mds.zstd") for k in a) and "web-tw/index.json" in a
    # a sub-dataset left by an earlier build is removed by the merge, so it cannot be read as current
    import shutil

    from datatrove.executor import LocalPipelineExecutor

    from twbert.shards import writer

    shutil.copytree(tmp_path / "b" / "shards" / "web-other", tmp_path / "b" / "shards" / "web-cn")
    cfg = load("build", overrides={"executor": {"tasks": 2}, "shards": {"tokenizer": str(tokenizer_dir), "max_len": 130, "min_tail_tokens": 16}})
    merge = writer.stages(cfg, tmp_path / "documents", tmp_path / "b" / "shards")[1]
    LocalPipelineExecutor(pipeline=merge.pipeline, tasks=1, logging_dir=str(tmp_path / "merge-again")).run()
    assert tree_digest(tmp_path / "b" / "shards") == a


def test_other_tokenizer_under_existing_shards_is_refused(tmp_path, tokenizer_dir):
    from twbert.errors import UsageError
    from twbert.shards.tokenizer import train

    write_documents(tmp_path / "documents")
    build_shards(tmp_path / "run", tokenizer_dir, tmp_path / "documents")
    (tmp_path / "c.txt").write_text("\n".join(documents(20, seed=9)), encoding="utf-8")
    train([str(tmp_path / "c.txt")], vocab_size=500, out_dir=tmp_path / "other", show_progress=False)
    with pytest.raises(UsageError, match="another tokenizer"):
        build_shards(tmp_path / "run", tmp_path / "other", tmp_path / "documents")


def test_dropped_documents_are_kept_with_their_reason(tmp_path, tokenizer_dir):
    """The tokenise step's drops (blank text, tier `drop`) reach the exclusion writer the build passes."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.shards import writer

    docs = tmp_path / "docs"
    rows = write_documents(docs)
    rows.append({"text": "這篇被政策丟掉。", "id": "dropped-1", "metadata": {"source": "web", "tier": "drop", "weight": 0.0}})
    with gzip.open(docs / "00002.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
    cfg = load("build", overrides={"out": str(tmp_path / "out"), "executor": {"tasks": 1, "workers": 1},
                                   "shards": {"tokenizer": str(tokenizer_dir), "max_len": 130, "min_tail_tokens": 16}})
    removed = tmp_path / "removed"
    stages = writer.stages(cfg, docs, tmp_path / "out" / "shards",
                           lambda step: JsonlWriter(str(removed / step), output_filename="${rank}.jsonl", compression=None))
    LocalPipelineExecutor(pipeline=stages[0].pipeline, tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    kept = [json.loads(line) for f in sorted(removed.rglob("*.jsonl")) for line in f.read_text(encoding="utf-8").splitlines()]
    assert sorted((d["id"], d["metadata"]["filter_reason"]) for d in kept) == [("dropped-1", "tier_drop"), ("empty-1", "empty")]

"""shards/mds.py writes the bytes streaming's MDSWriter and merge_index write, and refuses what it cannot write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twbert.shards.format import COLUMNS, HASH
from twbert.shards.mds import MDSWriter, check_compression, merge_index


def samples(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 700)) if i % 5 else 300  # some long enough for a uint16 shape
        out.append({"input_ids": rng.integers(0, 50000, k, dtype=np.uint32),
                    "word_ids": np.sort(rng.integers(0, k, k)).astype(np.int32),
                    "doc_id": f"文件-{i // 3}", "chunk_index": i % 3, "source": "web", "tier": "tw_converted",
                    "weight": np.float32(0.3 + i % 2)})
    return out


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("compression,size_limit", [("zstd", 1 << 26), ("zstd", 3000), (None, 5000), ("zstd:7", 20000),
                                                    ("gz", 4000), ("bz2:3", None), ("zstd", 10)])
def test_same_bytes_as_streaming(tmp_path, compression, size_limit):
    from streaming import MDSWriter as StreamingMDSWriter

    rows = samples(40)
    for name, cls in (("ours", MDSWriter), ("theirs", StreamingMDSWriter)):
        with cls(out=str(tmp_path / name), columns=COLUMNS, compression=compression, hashes=[HASH],
                 size_limit=size_limit) as w:
            for r in rows:
                w.write(r)
    ours, theirs = tree(tmp_path / "ours"), tree(tmp_path / "theirs")
    assert ours == theirs
    if size_limit and size_limit < 1 << 20:
        assert len(json.loads(ours["index.json"])["shards"]) > 1  # the shard cut is exercised


def test_merge_index_same_as_streaming(tmp_path):
    from streaming.base.util import merge_index as streaming_merge

    for r in range(3):
        with MDSWriter(out=str(tmp_path / "ds" / f"part-{r:05d}"), columns=COLUMNS, compression="zstd",
                       hashes=[HASH], size_limit=4000) as w:
            for s in samples(10 + r, seed=r):
                w.write(s)
    parts = [str(tmp_path / "ds" / f"part-{r:05d}" / "index.json") for r in (0, 2, 1)]  # the order given is kept
    merge_index(parts, tmp_path / "ds")
    ours = (tmp_path / "ds" / "index.json").read_bytes()
    (tmp_path / "ds" / "index.json").unlink()
    streaming_merge(parts, str(tmp_path / "ds"))
    assert ours == (tmp_path / "ds" / "index.json").read_bytes()
    assert not list((tmp_path / "ds").glob(".index.json.tmp*"))


def test_read_back_by_streaming(tmp_path):
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    rows = samples(25)
    with MDSWriter(out=str(tmp_path / "ds"), columns=COLUMNS, compression="zstd", hashes=[HASH], size_limit=5000) as w:
        for r in rows:
            w.write(r)
    clean_stale_shared_memory()
    ds = StreamingDataset(local=str(tmp_path / "ds"), shuffle=False, batch_size=1)
    assert len(ds) == len(rows)
    for i, r in enumerate(rows):
        got = ds[i]
        assert np.array_equal(got["input_ids"], r["input_ids"]) and np.array_equal(got["word_ids"], r["word_ids"])
        assert (got["doc_id"], got["chunk_index"], got["tier"]) == (r["doc_id"], r["chunk_index"], r["tier"])


@pytest.mark.parametrize("bad", ["br", "zstd:0", "zstd:x", "lz4", "gz:10"])
def test_unsupported_compression_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="MDS compression"):
        check_compression(bad)
    with pytest.raises(ValueError, match="MDS compression"):
        MDSWriter(out=str(tmp_path), columns=COLUMNS, compression=bad)


def test_unsupported_encoding_and_values_refused(tmp_path):
    with pytest.raises(ValueError, match="'evil'.*pkl"):
        MDSWriter(out=str(tmp_path / "a"), columns={"evil": "pkl"})
    w = MDSWriter(out=str(tmp_path / "b"), columns={"x": "ndarray:uint32"})
    with pytest.raises(ValueError, match="Wrong dtype"):
        w.write({"x": np.zeros(3, np.int64)})
    with pytest.raises(ValueError, match="0 elements"):
        w.write({"x": np.zeros(0, np.uint32)})

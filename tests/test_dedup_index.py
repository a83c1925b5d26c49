"""Incremental dedup: a datasketch index of one run, a new run filtered against it, the rate estimate."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from neardups import char_edits, document, simplified_copy, web_copy
from test_dedup import read_jsonl, step_stats, write_jsonl_gz

from twbert.cli import build_parser, main
from twbert.errors import UsageError
from twbert.pipeline.dedup_index import DedupIndex, build_index, dedup_against, estimate_duplicate_rate


def _doc(doc_id, text, source="web"):
    return {"text": text, "id": doc_id, "metadata": {"source": source, "tier": "tw"}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An old run (60 docs), and a new run: 30 new docs + 12 near-duplicates of old ones."""
    tmp = tmp_path_factory.mktemp("runs")
    rng = random.Random(11)
    old = [_doc(f"old-{i}", document(rng)) for i in range(60)]
    write_jsonl_gz(tmp / "old" / "documents", old)
    new = [_doc(f"new-{i}", document(rng)) for i in range(30)]
    copies = []
    for i in range(12):
        src = old[i]["text"]
        text = (char_edits(src, 0.08, rng), simplified_copy(src), web_copy(src, rng))[i % 3]
        copies.append(_doc(f"copy-of-old-{i}", text))
    write_jsonl_gz(tmp / "new" / "documents", new + copies)
    return tmp, old, new, copies


def test_index_round_trip_finds_near_duplicates_only(runs):
    tmp, old, new, copies = runs
    counts = build_index(tmp / "old", tmp / "index", progress=False)
    assert counts == {"read": 60, "indexed": 60, "no_shingles": 0, "index_documents": 60}
    index = DedupIndex.load(tmp / "index")
    assert len(index) == 60
    from twbert.pipeline.dedup_index import Signer

    sign = Signer(index.params)
    for i, c in enumerate(copies):
        assert index.query(sign(c["text"]))[0][0] == f"old-{i}"
    assert all(index.query(sign(d["text"])) == [] for d in new)
    # Signatures are plain arrays: loading never unpickles.
    sig = np.load(tmp / "index" / "segments" / "00000.sig.npy", allow_pickle=False)
    assert sig.dtype == np.uint64 and sig.shape == (60, index.num_perm)


def test_against_drops_near_duplicates_with_counts(runs):
    tmp, old, new, copies = runs
    if not (tmp / "index" / "meta.json").exists():
        build_index(tmp / "old", tmp / "index", progress=False)
    dedup_against(tmp / "index", tmp / "new", tmp / "new-dedup", tasks=2)
    kept = read_jsonl(tmp / "new-dedup" / "documents")
    assert sorted(d["id"] for d in kept) == sorted(d["id"] for d in new)
    stats = step_stats(tmp / "new-dedup" / "logs" / "dedup_against", "MinHash against index")
    assert stats["total"] == 42 and stats["forwarded"] == 30
    assert stats["dropped"] == stats["dropped_near_duplicate"] == 12
    # kept in the build's audit-trail layout (pipeline/removed.py), where `twbert inspect` reads it
    removed = read_jsonl(tmp / "new-dedup" / "removed" / "dedup_against" / "minhash_against_index")
    assert {d["id"]: d["metadata"]["dup_of"] for d in removed} == {c["id"]: c["id"][8:] for c in copies}
    assert {d["metadata"]["filter_reason"] for d in removed} == {"near_duplicate"}
    # the same funnel as `twbert build` writes (pipeline/funnel.py)
    funnel = json.loads((tmp / "new-dedup" / "stats.json").read_text(encoding="utf-8"))["funnel"]
    row = next(r for r in funnel if r["step"] == "MinHash against index")
    assert (row["stage"], row["read"], row["kept"], row["dropped"]) == ("dedup_against", 42, 30, {"near_duplicate": 12})


def test_append_segment_and_parameter_check(runs, tmp_path):
    tmp, old, new, copies = runs
    build_index(tmp / "old", tmp_path / "ix", progress=False)
    with pytest.raises(UsageError, match="already exists"):
        build_index(tmp / "new", tmp_path / "ix", progress=False)
    counts = build_index(tmp / "new", tmp_path / "ix", append=True, progress=False)
    assert counts["index_documents"] == 60 + 42
    assert len(DedupIndex.load(tmp_path / "ix")) == 102
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    with pytest.raises(UsageError, match="differ"):
        build_index(tmp / "new", tmp_path / "ix", params={**meta["params"], "ngram": 7}, append=True)
    # A damaged segment is named, not silently used.
    np.save(tmp_path / "ix" / "segments" / "00001.sig.npy", np.zeros((3, 2), np.uint64))
    with pytest.raises(UsageError, match="segment 00001 is damaged"):
        DedupIndex.load(tmp_path / "ix")


def test_cli_index_and_against(runs, tmp_path, capsys):
    tmp, *_ = runs
    assert main(["dedup", "index", str(tmp / "old"), "--out", str(tmp_path / "ix")]) == 0
    assert "indexed 60 of 60" in capsys.readouterr().out
    assert main(["dedup", "against", str(tmp_path / "ix"), str(tmp / "new"), "--out", str(tmp_path / "n")]) == 0
    assert "dropped 12 near-duplicates" in capsys.readouterr().out
    assert main(["dedup", "against", str(tmp_path / "nope"), str(tmp / "new")]) == 2
    assert "not a twbert dedup index" in capsys.readouterr().err


def test_cli_help_documents_every_option():
    parser = build_parser()
    dedup = parser._subparsers._group_actions[0].choices["dedup"]
    for name, action in dedup._subparsers._group_actions[0].choices.items():
        for opt in action._actions:
            assert opt.help, f"dedup {name}: {opt.dest} has no help"


def test_estimate_duplicate_rate(tmp_path):
    rng = random.Random(5)
    docs = [_doc(f"d{i}", document(rng)) for i in range(80)]
    docs += [_doc(f"c{i}", char_edits(docs[i]["text"], 0.06, rng)) for i in range(10)]
    write_jsonl_gz(tmp_path / "run" / "documents", docs)
    full = estimate_duplicate_rate(tmp_path / "run", sample_size=1000, seed=0)
    assert full["documents"] == full["sample"] == 90
    assert full["duplicates"] == 20 and full["rate"] == pytest.approx(20 / 90)
    part = estimate_duplicate_rate(tmp_path / "run", sample_size=30, seed=1)
    assert part == estimate_duplicate_rate(tmp_path / "run", sample_size=30, seed=1)  # seeded
    assert part["sample"] == 30 and part["ci95"][0] <= part["rate"] <= part["ci95"][1]
    # A scan of the whole corpus finds a sampled doc's twin even when the twin is not sampled.
    assert part["duplicates"] > 0
    build_index(tmp_path / "run", tmp_path / "ix", progress=False)
    via_index = estimate_duplicate_rate(tmp_path / "run", sample_size=1000, seed=0, index=tmp_path / "ix")
    assert via_index["scope"] == "index" and via_index["duplicates"] == 20


def test_bad_document_line_names_file_and_line(tmp_path):
    import gzip

    (tmp_path / "run" / "documents").mkdir(parents=True)
    with gzip.open(tmp_path / "run" / "documents" / "00000.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": "第一篇文件的內容", "id": "a", "metadata": {}}) + "\n")
        f.write('{"text": "斷掉的一行\n')
    with pytest.raises(UsageError, match=r"00000\.jsonl\.gz:2: not a datatrove document"):
        build_index(tmp_path / "run", tmp_path / "ix", progress=False)
    with pytest.raises(UsageError, match="neither a run directory"):
        build_index(tmp_path / "nothing", tmp_path / "ix2", progress=False)


def test_index_of_a_plain_folder_is_not_read_back_as_documents(runs, tmp_path, capsys):
    """A folder of JSONL files (no documents/): the default index goes beside it, and an index put
    inside it (explicit --out) is skipped by every reader: `--append`, `against`, the rate estimate."""
    import shutil

    tmp, old, *_ = runs
    folder = tmp_path / "batch"
    shutil.copytree(tmp / "old" / "documents", folder)
    assert main(["dedup", "index", str(folder)]) == 0
    assert "indexed 60 of 60" in capsys.readouterr().out
    assert (tmp_path / "batch-dedup_index" / "meta.json").is_file() and not (folder / "dedup_index").exists()
    # An index inside the folder: its segments/00000.ids.jsonl must not be taken for documents.
    assert main(["dedup", "index", str(folder), "--out", str(folder / "dedup_index")]) == 0
    capsys.readouterr()
    assert (folder / "dedup_index" / "segments" / "00000.ids.jsonl").is_file()
    assert main(["dedup", "index", str(folder), "--out", str(folder / "dedup_index"), "--append"]) == 0
    assert "indexed 60 of 60" in capsys.readouterr().out
    assert estimate_duplicate_rate(folder, sample_size=1000)["documents"] == 60
    dedup_against(tmp_path / "batch-dedup_index", folder, tmp_path / "out")
    stats = step_stats(tmp_path / "out" / "logs" / "dedup_against", "MinHash against index")
    assert stats["total"] == 60 and stats["dropped_near_duplicate"] == 60  # each one is in the index

"""Corpus dedup: real datatrove MinHash stages over generated documents with planted near-duplicates."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from neardups import char_edits, document, reorder_paragraphs, simplified_copy, web_copy

from twbert.config import defaults
from twbert.pipeline import components, dedup

N_DISTINCT = 120


def _doc(i, text, source="web", tier="tw"):
    return {"text": text, "id": f"{source}-{i}", "metadata": {"source": source, "tier": tier}}


def make_corpus(rng: random.Random):
    """Distinct documents plus planted pairs; returns (docs, {copy id: expected survivor id})."""
    docs, pairs = [], []
    for i in range(N_DISTINCT):
        docs.append(_doc(i, document(rng)))
    k = 1000
    for j in range(8):  # 5-10% character edits, both web/tw: the longer one survives
        orig = _doc(k, document(rng)); k += 1
        copy = _doc(k, char_edits(orig["text"], 0.05 + 0.05 * j / 7, rng)); k += 1
        pairs.append((orig, copy, max((orig, copy), key=lambda d: len(d["text"]))))
    for _ in range(6):  # reordered paragraphs; the copy is the Taiwan one, the original `other`
        orig = _doc(k, document(rng), tier="other"); k += 1
        copy = _doc(k, reorder_paragraphs(orig["text"], rng)); k += 1
        pairs.append((orig, copy, copy))
    for _ in range(6):  # Simplified mainland copy of a Traditional text: the Taiwan text survives
        orig = _doc(k, document(rng)); k += 1
        copy = _doc(k, simplified_copy(orig["text"]), tier="tw_converted"); k += 1
        pairs.append((orig, copy, orig))
    for j in range(4):  # tier and source disagree: a Taiwan web page and a converted zhwiki page of the
        # same text (the wiki one longer too). Tier comes first, so the web page survives.
        orig = _doc(k, document(rng)); k += 1
        copy = _doc(k, orig["text"] + "\n" + document(rng, paragraphs=1, sentences=(1, 1)),
                    source="wiki", tier=("tw_converted", "other")[j % 2]); k += 1
        pairs.append((orig, copy, orig))
    for _ in range(6):  # a zhwiki article republished on the web (longer there): the wiki page survives
        orig = _doc(k, document(rng), source="wiki"); k += 1
        copy = _doc(k, web_copy(orig["text"], rng)); k += 1
        pairs.append((orig, copy, orig))
    for orig, copy, _ in pairs:
        docs += [orig, copy]
    rng.shuffle(docs)
    return docs, pairs


def write_jsonl_gz(folder: Path, docs: list[dict], files: int = 2):
    folder.mkdir(parents=True)
    for f in range(files):
        with gzip.open(folder / f"{f:05d}.jsonl.gz", "wt", encoding="utf-8") as out:
            for d in docs[f::files]:
                out.write(json.dumps(d, ensure_ascii=False) + "\n")


def read_jsonl(folder: Path) -> list[dict]:
    docs = []
    for path in sorted(folder.rglob("*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            docs += [json.loads(line) for line in f]
    return docs


def run_stages(stages, logs: Path):
    from datatrove.executor import LocalPipelineExecutor

    for stage in stages:
        LocalPipelineExecutor(pipeline=stage.pipeline, tasks=stage.tasks, workers=1,
                              logging_dir=str(logs / stage.name)).run()
    return step_stats(logs / stages[-1].name, "MinHash filter")


def step_stats(stage_logs: Path, step: str) -> dict:
    """Summed per-task datatrove stats (`logs/<stage>/stats/NNNNN.json`) of the step named `step`."""
    total: dict[str, int] = {}
    for f in sorted((stage_logs / "stats").glob("*.json")):
        for s in json.loads(f.read_text(encoding="utf-8")):
            if step in s["name"]:
                for k, v in s["stats"].items():
                    total[k] = total.get(k, 0) + (v["total"] if isinstance(v, dict) else v)
    return total


def build_cfg(**dedup_over):
    cfg = defaults("build")
    cfg["executor"]["tasks"] = 2
    cfg["dedup"].update(dedup_over)
    return cfg


@pytest.fixture(scope="module")
def deduped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dedup")
    docs, pairs = make_corpus(random.Random(7))
    write_jsonl_gz(tmp / "in", docs)
    stats = run_stages(dedup.stages(build_cfg(), tmp / "in", tmp / "documents", tmp / "work"), tmp / "logs")
    return docs, pairs, read_jsonl(tmp / "documents"), stats


def test_near_duplicates_removed_with_high_recall_and_no_false_positives(deduped):
    docs, pairs, kept, _ = deduped
    kept_ids = {d["id"] for d in kept}
    found = sum(1 for orig, copy, _ in pairs if len({orig["id"], copy["id"]} & kept_ids) == 1)
    assert found / len(pairs) >= 0.95, f"recall {found}/{len(pairs)}"
    distinct = [f"web-{i}" for i in range(N_DISTINCT)]
    false_pos = [i for i in distinct if i not in kept_ids]
    assert len(false_pos) / len(distinct) <= 0.01, false_pos


def test_survivors_follow_policy_and_carry_cluster_size(deduped):
    _, pairs, kept, _ = deduped
    by_id = {d["id"]: d for d in kept}
    for orig, copy, expected in pairs:
        loser = copy if expected is orig else orig
        assert expected["id"] in by_id and loser["id"] not in by_id, (orig["id"], copy["id"])
        assert by_id[expected["id"]]["metadata"]["dup_cluster_size"] == 2
    assert all("dup_cluster_size" in d["metadata"] for d in kept)
    assert by_id["web-0"]["metadata"]["dup_cluster_size"] == 1
    assert by_id[pairs[-1][0]["id"]]["metadata"]["source"] == "wiki"  # metadata passes through


def test_stats_count_removed_documents_under_a_dedup_reason(deduped):
    docs, pairs, kept, stats = deduped
    assert stats["total"] == len(docs)
    assert stats["forwarded"] == len(kept)
    assert stats["dropped"] == stats["dropped_near_duplicate"] == len(docs) - len(kept)
    assert stats["near_duplicate_survivors"] == len(pairs)
    assert len(docs) - len(kept) == len(pairs)


def test_no_duplicates_means_nothing_removed(tmp_path):
    rng = random.Random(3)
    docs = [_doc(i, document(rng)) for i in range(30)] + [_doc(99, "。！…"), _doc(98, "短"), _doc(97, "短")]
    write_jsonl_gz(tmp_path / "in", docs, files=1)
    cfg = build_cfg()
    cfg["executor"]["tasks"] = 1
    run_stages(dedup.stages(cfg, tmp_path / "in", tmp_path / "out", tmp_path / "work"), tmp_path / "logs")
    kept = read_jsonl(tmp_path / "out")
    # Two identical short texts (one shingle each) are exact duplicates; everything else is unique,
    # including a text that is empty once punctuation is stripped.
    short = [d for d in kept if d["id"] in ("web-97", "web-98")]
    assert len(short) == 1 and short[0]["metadata"]["dup_cluster_size"] == 2
    assert sorted(d["id"] for d in kept if d not in short) == sorted(d["id"] for d in docs[:31])
    assert {d["metadata"]["dup_cluster_size"] for d in kept if d not in short} == {1}


def test_threshold_curve_is_the_lsh_s_curve():
    curve = dedup.threshold_curve(28, 3)
    assert curve[0.2] < 0.25 < 0.9 < curve[0.5]
    assert all(a < b for a, b in zip(curve.values(), list(curve.values())[1:]))


def test_repeated_paragraphs_across_documents(tmp_path):
    rng = random.Random(21)
    boiler = "本網站所有內容均受著作權法保護，未經書面同意不得轉載或重製，違者依法追究責任。"
    docs = [_doc(i, document(rng, paragraphs=2) + "\n延伸閱讀\n" + boiler) for i in range(6)]
    docs.append(_doc(50, boiler))  # nothing but boilerplate
    docs.append(_doc(51, document(rng, paragraphs=2) + "\n" + boiler.replace("，", ",")))  # same once normalised
    write_jsonl_gz(tmp_path / "in", docs, files=2)
    cfg = build_cfg(paragraphs={"enabled": True, "min_chars": 20, "shards": 3})
    stages = dedup.stages(cfg, tmp_path / "in", tmp_path / "out", tmp_path / "work")
    assert [s.name for s in stages][-3:] == ["dedup_paragraph_hashes", "dedup_paragraph_match", "dedup_paragraphs"]
    run_stages(stages, tmp_path / "logs")
    kept = read_jsonl(tmp_path / "out")
    holders = [d for d in kept if "著作權法" in d["text"]]
    assert len(holders) == 1  # the first document keeps it
    assert all(d["text"].count("延伸閱讀") == 1 for d in kept if d["id"] not in ("web-50", "web-51"))
    assert len(kept) == len(docs) - (0 if holders[0]["id"] == "web-50" else 1)
    stats = step_stats(tmp_path / "logs" / "dedup_paragraphs", "paragraph filter")
    assert stats["total"] == len(docs) and stats["forwarded"] == len(kept)
    assert stats["paragraphs_removed"] == 7  # 8 documents held it
    assert stats.get("dropped_repeated_paragraphs", 0) == len(docs) - len(kept)


def test_build_plan_runs_dedup_between_ingest_and_documents(tmp_path):
    from twbert.build import plan

    cfg = build_cfg()
    cfg.update(out=str(tmp_path / "run"))
    from twbert.dumps import write_fineweb_parquet

    cfg["inputs"]["fineweb"] = [str(write_fineweb_parquet(tmp_path / "x.parquet", [{"text": "一份文件。"}]))]
    stages = plan(cfg)
    names = [s.name for s in stages]
    rounds = cfg["dedup"]["cc_rounds"]
    stars = [f"dedup_{kind}_star_{r}" for r in range(1, rounds + 1) for kind in ("large", "small")][:-1]
    assert names[:len(stars) + 6] == ["ingest", "dedup_signatures", "dedup_buckets", "dedup_pairs", *stars,
                                      "dedup_clusters", "dedup_filter"]
    buckets, pairs = stages[2], stages[3]
    assert buckets.tasks == cfg["dedup"]["buckets"]
    assert pairs.tasks == cfg["executor"]["tasks"]  # dedup.pair_tasks null: one per executor task
    assert {s.tasks for s in stages[4:5 + len(stars)]} == {pairs.tasks}  # stars and clusters: the same K
    writer = stages[5 + len(stars)].pipeline[-1]
    assert writer.output_folder.path == str(tmp_path / "run" / "documents")


def test_cluster_verifies_every_pair_of_a_band_group(tmp_path):
    """datatrove writes a band group A,B,C as the chain A-B, B-C; when only A-C verifies it must be found."""
    import numpy as np
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    mh = MinhashConfig(n_grams=3, num_buckets=1, hashes_per_bucket=4, seed=1)
    (tmp_path / "buckets").mkdir()
    (tmp_path / "sigs" / "docsigs").mkdir(parents=True)
    np.array([0, 0, 0, 1, 0, 1, 0, 2], dtype="<u4").tofile(tmp_path / "buckets" / "00000_00.dups")
    np.array([[1, 2, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4]], dtype="<u8").tofile(tmp_path / "sigs" / "docsigs" / "00000.sig")
    meta = np.array([(1, 0, 10, 5), (1, 0, 10, 6), (3, 0, 10, 7)], dtype=dedup.META_DTYPE)  # doc 2 is tier tw
    meta.tofile(tmp_path / "sigs" / "docsigs" / "00000.meta")
    dedup.TwMinhashPairs(str(tmp_path / "buckets"), str(tmp_path / "sigs"), str(tmp_path / "pairs"), mh, 0.45).run()
    star_in, star_out = run_star_rounds(tmp_path / "pairs", tmp_path / "cc", parts=1, rounds=3)
    dedup.TwMinhashCluster(star_in, star_out, str(tmp_path / "pairs"), str(tmp_path / "sigs"), str(tmp_path / "out"),
                           1, 1.0).run()
    assert np.fromfile(tmp_path / "out" / "000000-00000.remove", dtype="<u4").tolist() == [0]
    assert np.fromfile(tmp_path / "out" / "000000-00000.sizes", dtype="<u4").tolist() == [2, 2]


def run_star_rounds(pairs: Path, work: Path, parts: int, rounds: int, budget_gb: float = 1.0):
    """The star stages `dedup.stages` plans, run in this process task by task: (large-star inputs, outputs)."""
    star_in, star_out, prev = [], [], pairs
    for r in range(1, rounds + 1):
        for kind in ("large", "small") if r < rounds else ("large",):
            folder = work / f"{r:02d}_{kind}"
            step = components.StarStage(kind, str(prev), str(folder), parts, list(star_out), budget_gb)
            for rank in range(parts):
                step.run(rank=rank, world_size=parts)
            if kind == "large":
                star_in.append(str(prev)), star_out.append(str(folder))
            prev = folder
    return star_in, star_out


def _reference_pairs(raw, max_group):
    """Candidate pairs of a whole `.dups` array, expanded at once (the pre-streaming algorithm)."""
    import numpy as np

    a, b = dedup._keys(raw)
    starts = np.flatnonzero(np.concatenate([[True], a[1:] != b[:-1]]))
    ends = np.append(starts[1:], len(a))
    out = set()
    for s_, e_ in zip(starts.tolist(), ends.tolist()):
        pairs, _ = dedup._expand(np.stack([a[s_:e_], b[s_:e_]], 1), max_group)
        out |= {tuple(sorted(p)) for p in pairs.tolist()}
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_band_groups_streamed_in_chunks_give_every_pair(chunk):
    """Groups cut by chunk boundaries (and groups growing past max_group mid-chunk) lose no pair."""
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    recs, doc = [], 0
    for size in [2, 3, 2, 7, 12, 2, 5, 9, 2, 4]:  # members per band group
        members = [(int(rng.integers(0, 3)), doc + i) for i in range(size)]
        doc += size
        recs += [(*members[i], *members[i + 1]) for i in range(size - 1)]
    raw = np.array(recs, dtype="<u4")
    got = set()
    for pairs, _ in dedup.band_groups(io.BytesIO(raw.tobytes()), chunk, max_group=6):
        got |= {tuple(sorted(p)) for p in pairs.tolist()}
    assert got == _reference_pairs(raw, 6)


def _dedup_run(tmp, docs, name, **over):
    cfg = build_cfg(block_pairs=64, **over)  # small blocks: many verify blocks per band file
    (tmp / name).mkdir()
    if not (tmp / "in").exists():
        write_jsonl_gz(tmp / "in", docs, files=4)
    cfg["executor"]["tasks"] = 4
    stages = dedup.stages(cfg, tmp / "in", tmp / name / "documents", tmp / name / "work")
    return stages


@pytest.mark.slow
def test_pair_tasks_1_and_4_give_identical_documents_and_stats(tmp_path):
    docs, _ = make_corpus(random.Random(11))
    outs = {}
    for k in (1, 4):
        stages = _dedup_run(tmp_path, docs, f"k{k}", pair_tasks=k)
        assert next(s for s in stages if s.name == "dedup_pairs").tasks == k
        filt = run_stages(stages, tmp_path / f"k{k}" / "logs")
        clusters = step_stats(tmp_path / f"k{k}" / "logs" / "dedup_clusters", "MinHash clusters")
        files = {p.name: gzip.decompress(p.read_bytes()) for p in sorted((tmp_path / f"k{k}" / "documents").glob("*.jsonl.gz"))}
        outs[k] = (files, filt, clusters)
    assert outs[1][0] == outs[4][0] and outs[1][0]
    assert outs[1][1] == outs[4][1] and outs[1][1]["dropped_near_duplicate"] > 0
    assert outs[1][2] == outs[4][2] and outs[1][2]["verified_pairs"] > 0


class _KilledPairs(dedup.TwMinhashPairs):
    """The pairs step of task 2, killed after writing its first verified block."""

    def _verify(self, pairs, large, band):
        if self._rank == 2 and getattr(self, "_blocks_done", 0) == 1:
            raise RuntimeError("killed")
        self._blocks_done = getattr(self, "_blocks_done", 0) + 1
        return super()._verify(pairs, large, band)

    def run(self, data=None, rank=0, world_size=1):
        self._rank = rank
        return super().run(data, rank, world_size)


@pytest.mark.slow
def test_killed_pairs_task_rerun_completes_only_it_with_identical_output(tmp_path):
    from datatrove.executor import LocalPipelineExecutor

    docs, _ = make_corpus(random.Random(11))
    clean = _dedup_run(tmp_path, docs, "clean", pair_tasks=4)
    run_stages(clean, tmp_path / "clean" / "logs")
    stages = _dedup_run(tmp_path, docs, "killed", pair_tasks=4)
    logs = tmp_path / "killed" / "logs"
    i = next(i for i, s in enumerate(stages) if s.name == "dedup_pairs")
    run_stages(stages[:i], logs)
    pairs = stages[i].pipeline[0]
    killed = _KilledPairs(pairs.input_folder, pairs.signatures_folder, pairs.output_folder, pairs.config,
                          pairs.threshold, block=pairs.block)
    with pytest.raises(Exception):  # noqa: B017  the executor reports the failed task
        LocalPipelineExecutor(pipeline=[killed], tasks=4, workers=1, logging_dir=str(logs / "dedup_pairs")).run()
    done = sorted(p.name for p in (logs / "dedup_pairs" / "completions").iterdir())
    assert done == ["00000", "00001"]  # one worker: the executor stops at the killed task
    work = tmp_path / "killed" / "work" / "pairs"
    before = {p.name: p.stat().st_mtime_ns for p in work.iterdir() if p.name[:5] in done}
    assert len(before) == 4
    run_stages(stages, logs)  # the rerun: the same stages
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir() if p.name in before} == before
    read = lambda run: {p.name: gzip.decompress(p.read_bytes()) for p in (tmp_path / run / "documents").glob("*.gz")}
    assert read("killed") == read("clean") and read("clean")
    names = sorted(p.name for p in work.iterdir() if p.name.startswith("00002"))
    assert "00002.count" in names and len(names) > 1
    for name in names:
        assert (work / name).read_bytes() == (tmp_path / "clean" / "work" / "pairs" / name).read_bytes()


def _union_find(edges, n):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def _star_labels(star_in, star_out, n):
    """Component label (the smallest key) of nodes 0..n-1 from the settled large-star input."""
    import numpy as np

    at = components.converged([dedup.get_datafolder(f) for f in star_out])
    assert at is not None
    label = list(range(n))
    for f in Path(star_in[at]).glob("*.edges"):
        for u, v in np.fromfile(f, dtype="<u8").reshape(-1, 2).tolist():
            if v < u:
                label[u] = v
    return label, at


def _write_pairs(folder: Path, edges, parts: int):
    import numpy as np

    folder.mkdir(parents=True)
    e = np.array(edges, dtype=np.uint64).reshape(-1, 2)
    out = components.EdgeWriter(dedup.get_datafolder(str(folder)), 0, parts)
    out.write(e.reshape(-1), e[:, ::-1].reshape(-1))  # both ends, as dedup_pairs writes them
    out.close()


@pytest.mark.parametrize("graph", ["path", "reversed_path", "random", "cliques", "star"])
@pytest.mark.parametrize("parts", [1, 3])
def test_star_rounds_find_the_connected_components(tmp_path, graph, parts):
    """Large-star / small-star rounds in K tasks give every node its component's smallest key."""
    rng = random.Random(f"{graph}{parts}")
    n = 400
    order = list(range(n))
    rng.shuffle(order)
    if graph == "path":
        edges = list(zip(order, order[1:]))
    elif graph == "reversed_path":
        edges = [(i + 1, i) for i in range(n - 1)]
    elif graph == "random":
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(300)]
    elif graph == "cliques":
        edges, i = [], 0
        while i < n - 12:
            k = rng.randint(2, 12)
            edges += [(order[a], order[b]) for a in range(i, i + k) for b in range(a + 1, i + k)]
            i += k
    else:
        edges = [(n - 1, i) for i in range(n - 1)]
    _write_pairs(tmp_path / "pairs", edges, parts)
    star_in, star_out = run_star_rounds(tmp_path / "pairs", tmp_path / "cc", parts, rounds=14)
    label, _ = _star_labels(star_in, star_out, n)
    assert label == _union_find(edges, n)


def test_star_rounds_in_a_small_memory_budget_sort_in_pieces_with_the_same_result(tmp_path, monkeypatch):
    """A task over its budget scatters its edges into pieces on disk: same components, pieces cleaned up."""
    rng = random.Random(5)
    n = 3000
    order = list(range(n))
    rng.shuffle(order)
    edges, i = [], 0
    while i < n - 16:  # clusters of 2-16 as random chains: several rounds, no neighbourhood near the budget
        k = rng.randint(2, 16)
        edges += list(zip(order[i : i + k], order[i + 1 : i + k]))
        i += k
    _write_pairs(tmp_path / "pairs", edges, 2)
    budget = 200 * components.RECORD_BYTES / 2**30  # 200 records; ~2,800 a task: over 10 pieces each
    pieces = []
    real = components.grouped

    def counting(folder, rank, budget_, spill):
        for rec in real(folder, rank, budget_, spill):
            pieces.append(len(rec))
            yield rec

    monkeypatch.setattr(components, "grouped", counting)
    star_in, star_out = run_star_rounds(tmp_path / "pairs", tmp_path / "cc", 2, rounds=10, budget_gb=budget)
    assert len(pieces) > 40 and max(pieces) <= 2 * 200
    label, _ = _star_labels(star_in, star_out, n)
    assert label == _union_find(edges, n)
    assert not any(p.name.startswith("spill") for p in (tmp_path / "cc").rglob("*"))


def test_a_cluster_larger_than_the_memory_budget_says_which_key_to_raise(tmp_path):
    from twbert.errors import UsageError
    _write_pairs(tmp_path / "pairs", [(0, i) for i in range(1, 2000)], 1)  # one node, 1,999 neighbours
    step = components.StarStage("large", str(tmp_path / "pairs"), str(tmp_path / "cc"), 1, [],
                                100 * components.RECORD_BYTES / 2**30)
    with pytest.raises(UsageError, match=r"dedup\.cluster_memory_gb"):
        step.run()


def test_clusters_that_do_not_settle_in_cc_rounds_say_which_key_to_raise(tmp_path):
    from twbert.errors import UsageError

    _write_pairs(tmp_path / "pairs", [(i + 1, i) for i in range(200)], 2)  # a chain: ~log2(200) rounds
    star_in, star_out = run_star_rounds(tmp_path / "pairs", tmp_path / "cc", 2, rounds=2)
    step = dedup.TwMinhashCluster(star_in, star_out, str(tmp_path / "pairs"), str(tmp_path / "sigs"),
                                  str(tmp_path / "out"), 2, 1.0)
    with pytest.raises(UsageError, match=r"dedup\.cc_rounds"):
        step.run(rank=0, world_size=2)


@pytest.mark.parametrize("block", [1, 7, 512, 4096])
def test_signature_is_datatroves_arithmetic_in_any_block_size(block):
    """(s * a + b) mod 2**61-1 with the product wrapping at 2**64, minimum per hash: datatrove's get_signature."""
    import numpy as np
    from datatrove.pipeline.dedup.minhash import _mersenne_prime

    a, b = dedup.permutations(1, 125)
    rng = np.random.default_rng(block)
    shingles = np.concatenate([rng.integers(0, 2**64 - 1, 1500, dtype=np.uint64, endpoint=True),
                               np.array([0, 1, _mersenne_prime - 1, _mersenne_prime, 2**64 - 1], dtype=np.uint64)])
    expected = ((shingles.reshape(-1, 1) * a + b) % _mersenne_prime).min(axis=0)
    assert (dedup.signature(shingles, a, b, block=block) == expected).all()


class _KilledStar(components.StarStage):
    """A large-star task 1 killed after writing part of its output."""

    def run(self, data=None, rank=0, world_size=1):
        if rank == 1:
            import numpy as np

            out = components.EdgeWriter(self.output_folder, rank, self.parts)
            out.write(np.arange(10, dtype=np.uint64), np.zeros(10, dtype=np.uint64))
            out.close()
            raise RuntimeError("killed")
        return super().run(data, rank, world_size)


@pytest.mark.slow
def test_killed_star_task_rerun_completes_only_it_with_identical_output(tmp_path):
    from datatrove.executor import LocalPipelineExecutor

    rng = random.Random(8)
    order = list(range(600))
    rng.shuffle(order)
    edges = [(order[i], order[i + 1]) for i in range(0, 590) if i % 7]  # chains of 6: a few rounds

    def stages_for(run):
        cfg = build_cfg(pair_tasks=3, cc_rounds=6)
        cfg["executor"]["tasks"] = 3
        work = tmp_path / run / "work"
        _write_pairs(work / "pairs", edges, 3)
        plan = dedup.stages(cfg, tmp_path / "in", tmp_path / run / "documents", work)
        return [s for s in plan if "_star_" in s.name], tmp_path / run / "logs"

    def run_all(stages, logs):
        for s in stages:
            if s.needed():
                LocalPipelineExecutor(pipeline=s.pipeline, tasks=s.tasks, workers=1,
                                      logging_dir=str(logs / s.name)).run()

    clean, clean_logs = stages_for("clean")
    run_all(clean, clean_logs)
    stages, logs = stages_for("killed")
    first = stages[0].pipeline[0]
    killed = _KilledStar("large", first.input_folder, first.output_folder, 3, [], 1.0)
    with pytest.raises(Exception):  # noqa: B017  the executor reports the failed task
        LocalPipelineExecutor(pipeline=[killed], tasks=3, workers=1, logging_dir=str(logs / stages[0].name)).run()
    out = Path(first.output_folder.path)
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.startswith("00000")}
    run_all(stages, logs)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in done} == done  # task 0 not rerun
    files = lambda run: {p.relative_to(tmp_path / run): p.read_bytes()
                         for p in sorted((tmp_path / run / "work" / "components").rglob("*")) if p.is_file()}
    assert files("killed") == files("clean")
    at = components.converged([s.pipeline[0].output_folder for s in clean if "large" in s.name])
    assert at is not None and at >= 2  # the chains took rounds

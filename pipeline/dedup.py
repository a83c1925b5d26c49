"""Near-duplicate removal across all sources, on datatrove's MinHash stages.

    dedup_signatures   JsonlReader -> TwMinhashSignature      (N tasks)  character-shingle MinHash
    dedup_buckets      MinhashDedupBuckets                    (B tasks)  datatrove's, unchanged: LSH bands
    dedup_clusters     TwMinhashCluster                       (1 task)   verify pairs, union, pick survivors
    dedup_filter       JsonlReader -> TwMinhashFilter -> JsonlWriter (N tasks)
    [dedup_paragraph_* three stages, when dedup.paragraphs.enabled: see twbert.pipeline.paragraphs]

Wiki and web documents go through one index, so a web page that copies a Wikipedia article is found.

Three things differ from datatrove's own MinHash:
- Shingles are normalised character n-grams (twbert.pipeline.shingles): 14-18x the docs/s of its
  spaCy+jieba word tokenizer for cmn_Hani (benchmarks/bench_minhash.py) and blind to
  Simplified/Traditional script.
- Band collisions are *candidates*: the cluster step checks each candidate pair (every pair of a band
  group, not only datatrove's chain) against the full signatures (estimated Jaccard >= `threshold`)
  before joining it. That lets the bands be set for high
  recall (low S-curve threshold) without the false positives low thresholds bring at corpus scale.
- The survivor of a cluster is chosen by policy, not by document index: variant tier (tw >
  tw_converted > other), then wiki over web, then the longer text, then the smaller hash of the
  document id (deterministic, independent of the task count). The signature step writes each
  document's priority next to its signature so the cluster step can decide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashConfig, MinhashDedupSignature, _mersenne_prime
from datatrove.utils.hashing import HashConfig
from datatrove.utils.logging import logger

from twbert.pipeline.shingles import Shingler

_S61 = np.uint64(61)
TIER_RANK = {"tw": 3, "tw_converted": 2, "other": 1}  # anything else (absent, "drop") ranks 0
SOURCE_RANK = {"wiki": 1}  # web and anything else rank 0
# Per-document priority record written by the signature step, read by the cluster step.
META_DTYPE = np.dtype([("tier", "u1"), ("source", "u1"), ("length", "<u4"), ("idhash", "<u8")])


def minhash_config(dcfg: dict) -> MinhashConfig:
    """datatrove's MinhashConfig from the `dedup:` config section."""
    return MinhashConfig(
        n_grams=int(dcfg["ngram"]),
        num_buckets=int(dcfg["buckets"]),
        hashes_per_bucket=int(dcfg["hashes_per_bucket"]),
        seed=int(dcfg["seed"]),
        hash_config=HashConfig(precision=64, hash_fc="sha1"),  # hash_fc is unused: shingles hash themselves
    )


def permutations(seed: int, num_hashes: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of the MinHash permutations, drawn exactly as datatrove's MinhashDedupSignature does."""
    gen = np.random.RandomState(seed)
    return (
        gen.randint(1, _mersenne_prime, dtype=np.uint64, size=(1, num_hashes)),
        gen.randint(0, _mersenne_prime, dtype=np.uint64, size=(1, num_hashes)),
    )


def signature(shingles: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 2048) -> np.ndarray:
    """MinHash signature (uint64[num_hashes], values < 2**61 - 1) of a 1-D array of uint64 shingles.

    Exactly datatrove's `get_signature` ((s * a + b) mod 2**61-1, the product wrapping at 2**64), with
    the Mersenne modulus done by shifts (x mod 2**61-1 = (x & M) + (x >> 61), minus M once if >= M),
    in place, and in blocks of shingles so a long document never materialises a huge matrix.
    """
    out = np.full(a.shape[1], np.iinfo(np.uint64).max, dtype=np.uint64)
    for i in range(0, len(shingles), block):
        x = np.multiply(shingles[i : i + block].reshape(-1, 1), a)
        x += b
        y = x & _mersenne_prime
        x >>= _S61
        y += x
        np.subtract(y, _mersenne_prime, out=y, where=y >= _mersenne_prime)
        np.minimum(out, y.min(axis=0), out=out)
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values (row-wise for 2-D inputs)."""
    return (sig_a == sig_b).mean(axis=-1)


def priority(doc) -> tuple:
    """Survivor policy key of a document, higher wins (the id hash breaks ties: smaller wins)."""
    return (
        TIER_RANK.get(doc.metadata.get("tier"), 0),
        SOURCE_RANK.get(doc.metadata.get("source"), 0),
        len(doc.text),
    )


def _id_hash(doc_id: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(str(doc_id).encode("utf-8"), digest_size=8).digest(), "little")


def threshold_curve(buckets: int, rows: int, points=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> dict[float, float]:
    """P(a pair with Jaccard s becomes a candidate) = 1 - (1 - s**rows) ** buckets."""
    return {s: 1 - (1 - s**rows) ** buckets for s in points}


class TwMinhashSignature(MinhashDedupSignature):
    """Stage 1: MinHash signatures of character shingles, plus what the later stages need.

    Writes datatrove's per-bucket signature files (so its MinhashDedupBuckets runs unchanged), and per
    task `docsigs/NNNNN.sig` (every document's full signature, one row per document index, for pair
    verification) and `docsigs/NNNNN.meta` (the survivor-policy record of every document).
    """

    name = "🎯 MinHash signatures (CJK shingles)"

    def __init__(self, output_folder: DataFolderLike, config: MinhashConfig, fold: str | None = "t2s"):
        # Not super().__init__: it loads a word tokenizer (spaCy) that twbert never uses.
        PipelineStep.__init__(self)
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket
        self._parameters = None
        self.skip_existing_sigs = False
        self.shingler = Shingler(config.n_grams, fold)

    def get_shingles(self, text: str) -> np.ndarray:
        return self.shingler.shingles(text).reshape(-1, 1)

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        sig = signature(shingles.reshape(-1), *self.parameters)
        return [x.tolist() for x in np.split(sig, self.config.num_buckets)]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        cfg = self.config
        r = cfg.hashes_per_bucket
        record = np.dtype([("sig", "<u8", (r,)), ("doc", "<u4")])  # datatrove's "<{r}QI" line
        empty = np.full(self.num_hashes, np.iinfo(np.uint64).max, dtype=np.uint64)
        sigs, signed, metas = [], [], []

        def flush():
            full = np.stack(sigs)
            mask = np.array(signed, dtype=bool)
            idx = np.arange(start, start + len(sigs), dtype="<u4")[mask]
            for bi, bucket in enumerate(buckets):
                rec = np.empty(len(idx), dtype=record)
                rec["sig"] = full[mask, bi * r : (bi + 1) * r]
                rec["doc"] = idx
                bucket.write(rec.tobytes())
            sigs_f.write(full.astype("<u8").tobytes())
            meta_f.write(np.array(metas, dtype=META_DTYPE).tobytes())
            sigs.clear(), signed.clear(), metas.clear()

        with self.track_time():
            buckets = [
                self.output_folder.open(f"bucket_{bi:03d}/{rank:05d}.minhash.sig", mode="wb")
                for bi in range(cfg.num_buckets)
            ]
            sigs_f = self.output_folder.open(f"docsigs/{rank:05d}.sig", mode="wb")
            meta_f = self.output_folder.open(f"docsigs/{rank:05d}.meta", mode="wb")
            start = 0
            for doc_idx, doc in enumerate(data):
                self.stat_update("signed")
                shingles = self.shingler.shingles(doc.text)
                if shingles.size:
                    sigs.append(signature(shingles, *self.parameters))
                else:
                    self.stat_update("no_shingles")  # empty after normalisation: unique by definition
                    sigs.append(empty)
                signed.append(shingles.size > 0)
                tier, source, length = priority(doc)
                metas.append((tier, source, min(length, 2**32 - 1), _id_hash(doc.id)))
                if len(sigs) == 4096:
                    flush()
                    start = doc_idx + 1
            if sigs:
                flush()
            for f in buckets + [sigs_f, meta_f]:
                f.close()
        # datatrove's own run sorts (and verifies) the bucket files it finds already written.
        self.skip_existing_sigs = True
        super().run(iter(()), rank, world_size)


def _read_rows(folder, path: str, rows: np.ndarray, dtype: np.dtype, width: int = 1) -> np.ndarray:
    """Rows `rows` (sorted, unique) of a fixed-width binary file of `dtype` x `width` records."""
    size = dtype.itemsize * width
    out = np.empty((len(rows), width), dtype=dtype)
    with folder.open(path, "rb") as f:
        for i, r in enumerate(rows.tolist()):
            f.seek(r * size)
            out[i] = np.frombuffer(f.read(size), dtype=dtype)
    return out if width > 1 else out[:, 0]


class TwMinhashCluster(PipelineStep):
    """Stage 3 (one task): verify candidate pairs, build clusters, choose each cluster's survivor.

    Writes, per input task, `NNNNNN.remove` (uint32 document indexes to drop, sorted) and
    `NNNNNN.sizes` ((uint32 index, uint32 cluster size) of each survivor of a cluster > 1, sorted).
    """

    type = "🫂 - DEDUP"
    name = "🎯 MinHash clusters (verified, policy survivors)"

    def __init__(self, input_folder: DataFolderLike, signatures_folder: DataFolderLike,
                 output_folder: DataFolderLike, config: MinhashConfig, threshold: float, block: int = 1 << 18,
                 max_group: int = 256):
        super().__init__()
        self.block = block
        self.max_group = max_group
        self.input_folder = get_datafolder(input_folder)
        self.signatures_folder = get_datafolder(signatures_folder)
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.threshold = float(threshold)

    def _pairs(self) -> np.ndarray:
        """Candidate pairs as (task << 32 | index) keys, smaller first, each once.

        datatrove's buckets step writes, for a run of documents with equal band values A, B, C, only
        the chain A-B, B-C: enough for its plain union, not for verification (A-C may be the pair
        that verifies). Each document has one value per band, so consecutive chain links rebuild the
        groups exactly; groups of up to `max_group` are expanded to all their pairs, larger ones (mass
        boilerplate) to the chain plus every member against the group's first.
        """
        files = self.input_folder.list_files(glob_pattern="*.dups")
        if len(files) % self.config.num_buckets:
            raise ValueError(f"{self.input_folder.path}: {len(files)} .dups files for {self.config.num_buckets} buckets")
        out = []
        for name in files:
            with self.input_folder.open(name, "rb") as f:
                raw = np.frombuffer(f.read(), dtype="<u4").reshape(-1, 4)
            raw = raw[raw[:, 0] != SENTINEL]  # index matches: twbert's incremental dedup uses datasketch
            a = (raw[:, 0].astype(np.uint64) << np.uint64(32)) | raw[:, 1]
            b = (raw[:, 2].astype(np.uint64) << np.uint64(32)) | raw[:, 3]
            if not len(a):
                continue
            # A new group starts where a pair does not continue the previous one's chain.
            starts = np.flatnonzero(np.concatenate([[True], a[1:] != b[:-1]]))
            ends = np.append(starts[1:], len(a))
            small = (ends - starts) == 1
            out.append(np.stack([a[starts[small]], b[starts[small]]], axis=1))
            for s_, e_ in zip(starts[~small].tolist(), ends[~small].tolist()):
                members = np.append(a[s_:e_], b[e_ - 1])
                k = len(members)
                if k <= self.max_group:
                    i, j = np.triu_indices(k, 1)
                    out.append(np.stack([members[i], members[j]], axis=1))
                else:
                    out.append(np.stack([a[s_:e_], b[s_:e_]], axis=1))
                    out.append(np.stack([np.full(k - 1, members[0]), members[1:]], axis=1))
        if not out:
            return np.empty((0, 2), dtype=np.uint64)
        pairs = np.concatenate(out)
        return np.unique(np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1), axis=0)

    def _load(self, keys: np.ndarray, suffix: str, dtype, width: int) -> np.ndarray:
        """Rows of the per-task `docsigs/NNNNN.<suffix>` files for `keys` (sorted, unique (task << 32 | index))."""
        parts = []
        files = keys >> np.uint64(32)
        for f in np.unique(files).tolist():
            docs = (keys[files == f] & np.uint64(0xFFFFFFFF)).astype(np.int64)
            parts.append(_read_rows(self.signatures_folder, f"docsigs/{f:05d}.{suffix}", docs, np.dtype(dtype), width))
        return np.concatenate(parts)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        assert world_size == 1, "the cluster step runs as one task"
        with self.track_time():
            pairs = self._pairs()
            self.stat_update("candidate_pairs", value=len(pairs))
            # Verify in blocks of pairs, loading only the signatures each block needs: memory stays
            # bounded (~2 x block x signature bytes) however many candidates the bands produced.
            keep = np.zeros(len(pairs), dtype=bool)
            width = self.config.num_buckets * self.config.hashes_per_bucket
            for i in range(0, len(pairs), self.block):
                blk = pairs[i : i + self.block]
                keys, inverse = np.unique(blk.reshape(-1), return_inverse=True)
                inverse = inverse.reshape(-1, 2)
                sigs = self._load(keys, "sig", "<u8", width)
                keep[i : i + self.block] = estimated_jaccard(sigs[inverse[:, 0]], sigs[inverse[:, 1]]) >= self.threshold
            pairs = pairs[keep]
            self.stat_update("verified_pairs", value=len(pairs))

            parent: dict[int, int] = {}

            def find(x):
                root = x
                while parent.get(root, root) != root:
                    root = parent[root]
                while parent.get(x, x) != root:  # path compression
                    parent[x], x = root, parent[x]
                return root

            for a, b in pairs.tolist():
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            nodes = sorted(set(parent) | set(parent.values()))
            clusters: dict[int, list[int]] = {}
            for k in nodes:
                clusters.setdefault(find(k), []).append(k)
            meta = dict(zip(nodes, self._load(np.array(nodes, dtype=np.uint64), "meta", META_DTYPE, 1))) if nodes else {}

            def key(k):
                m = meta[k]
                # higher tier, wiki, longer first; then smaller id hash, then smaller (task, index)
                return (-int(m["tier"]), -int(m["source"]), -int(m["length"]), int(m["idhash"]), k)

            remove: dict[int, list[int]] = {}
            sizes: dict[int, list[tuple[int, int]]] = {}
            for members in clusters.values():
                best = min(members, key=key)
                self.stat_update("clusters")
                self.stat_update("cluster_size", value=len(members), unit="cluster")
                sizes.setdefault(best >> 32, []).append((best & 0xFFFFFFFF, len(members)))
                for k in members:
                    if k != best:
                        remove.setdefault(k >> 32, []).append(k & 0xFFFFFFFF)
                        self.stat_update("to_remove")
            for f, docs in remove.items():
                with self.output_folder.open(f"{f:06d}.remove", "wb") as out:
                    out.write(np.array(sorted(docs), dtype="<u4").tobytes())
            for f, rows in sizes.items():
                with self.output_folder.open(f"{f:06d}.sizes", "wb") as out:
                    out.write(np.array(sorted(rows), dtype="<u4").tobytes())
            logger.info(f"{len(clusters)} near-duplicate clusters, {sum(map(len, remove.values()))} documents to remove")


class TwMinhashFilter(PipelineStep):
    """Stage 4: drop every cluster member but its survivor; tag survivors with `dup_cluster_size`."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash filter"

    def __init__(self, input_folder: DataFolderLike):
        super().__init__()
        self.data_folder = get_datafolder(input_folder)

    def _load(self, name: str, width: int) -> np.ndarray:
        if not self.data_folder.exists(name):
            return np.empty((0, width), dtype="<u4")
        with self.data_folder.open(name, "rb") as f:
            return np.frombuffer(f.read(), dtype="<u4").reshape(-1, width)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        remove = set(self._load(f"{rank:06d}.remove", 1)[:, 0].tolist())
        sizes = dict(self._load(f"{rank:06d}.sizes", 2).tolist())
        for idx, doc in enumerate(data):
            with self.track_time():
                self.stat_update("total")
                if idx in remove:
                    self.stat_update("dropped", "dropped_near_duplicate")
                    continue
                size = sizes.get(idx, 1)
                doc.metadata["dup_cluster_size"] = size
                if size > 1:
                    self.stat_update("near_duplicate_survivors")
                self.stat_update("forwarded")
            yield doc


def stages(cfg: dict, input_dir, output_dir, work_dir) -> list:
    """The dedup stages for `twbert build`: documents in `input_dir` -> kept documents in `output_dir`."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.stage import Stage

    dcfg = cfg["dedup"]
    mh = minhash_config(dcfg)
    work = Path(work_dir)
    tasks = int(cfg["executor"]["tasks"])
    compression = (cfg.get("output") or {}).get("compression")
    para = dcfg.get("paragraphs") or {}
    kept_dir = work / "near_dedup_documents" if para.get("enabled") else Path(output_dir)

    def reader():
        # Stage 1 and stage 4 must see each task's documents in the same order: same reader, same tasks.
        return JsonlReader(str(input_dir), add_file_path=False)  # work/ paths are not provenance

    out = [
        Stage("dedup_signatures", [reader(), TwMinhashSignature(str(work / "signatures"), mh, dcfg.get("fold"))], tasks),
        Stage("dedup_buckets", [_buckets(work, mh)], mh.num_buckets),
        Stage("dedup_clusters", [TwMinhashCluster(str(work / "buckets"), str(work / "signatures"),
                                                  str(work / "clusters"), mh, dcfg["threshold"])], 1,
              {"workers": 1}),
        Stage("dedup_filter", [reader(), TwMinhashFilter(str(work / "clusters")),
                               JsonlWriter(str(kept_dir), compression=compression)], tasks),
    ]
    if para.get("enabled"):
        from twbert.pipeline import paragraphs

        out += paragraphs.stages(cfg, kept_dir, output_dir, work / "paragraphs")
    return out


def _buckets(work: Path, mh: MinhashConfig):
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

    return MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=mh)

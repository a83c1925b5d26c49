"""Near-duplicate removal across all sources, on datatrove's MinHash stages.

    dedup_signatures   JsonlReader -> TwMinhashSignature      (N tasks)  character-shingle MinHash
    dedup_buckets      MinhashDedupBuckets                    (B tasks)  datatrove's, unchanged: LSH bands
    dedup_pairs        TwMinhashPairs                         (K tasks)  band groups -> pairs, verified, streamed
    dedup_large_star_R StarStage (twbert.pipeline.components) (K tasks)  connected components of the verified
    dedup_small_star_R   ... rounds until the clusters settle (K tasks)  pairs, in bounded memory
    dedup_clusters     TwMinhashCluster                       (K tasks)  each cluster's survivor by policy
    dedup_filter       JsonlReader -> TwMinhashFilter -> JsonlWriter (N tasks)

No task's memory grows with the corpus: each holds a bounded block, buffer or piece (docs/scale.md).
    [dedup_paragraph_* three stages, when dedup.paragraphs.enabled: see twbert.pipeline.paragraphs]

Wiki and web documents go through one index, so a web page that copies a Wikipedia article is found.

Three things differ from datatrove's own MinHash:
- Shingles are normalised character n-grams (twbert.pipeline.shingles): 14-18x the docs/s of its
  spaCy+jieba word tokenizer for cmn_Hani (benchmarks/bench_minhash.py) and blind to
  Simplified/Traditional script.
- Band collisions are *candidates*: the pairs step checks each candidate pair (every pair of a band
  group, not only datatrove's chain) against the full signatures (estimated Jaccard >= `threshold`)
  before joining it. That lets the bands be set for high
  recall (low S-curve threshold) without the false positives low thresholds bring at corpus scale.
- The survivor of a cluster is chosen by policy, not by document index: variant tier (tw >
  tw_converted > other), then wiki over web, then the longer text, then the smaller hash of the
  document id (deterministic, independent of the task count). The signature step writes each
  document's priority next to its signature so the cluster step can decide.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashConfig, MinhashDedupSignature, _mersenne_prime
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.logging import logger

from twbert.pipeline import components
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


def signature(shingles: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 512) -> np.ndarray:
    """MinHash signature (uint64[num_hashes], values < 2**61 - 1) of a 1-D array of uint64 shingles.

    Exactly datatrove's `get_signature` ((s * a + b) mod 2**61-1, the product wrapping at 2**64), with
    the Mersenne modulus done by shifts (x mod 2**61-1 = (x & M) + (x >> 61), minus M once if >= M),
    in place, and in blocks of shingles so a long document never materialises a huge matrix. Blocks
    of 512 shingles keep the temporaries in cache: ~3x the speed of 2,048 (benchmarks/bench_scale.py).
    """
    out = np.full(a.shape[1], np.iinfo(np.uint64).max, dtype=np.uint64)
    for i in range(0, len(shingles), block):
        x = np.multiply(shingles[i : i + block].reshape(-1, 1), a)
        x += b
        y = x & _mersenne_prime
        x >>= _S61
        y += x
        # y - M wraps to a huge value when y < M, so the minimum is y - M exactly when y >= M
        np.subtract(y, _mersenne_prime, out=x)
        np.minimum(y, x, out=y)
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
                    sigs.append(signature(np.unique(shingles), *self.parameters))  # same minimum, fewer rows
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
    """Rows `rows` (sorted, unique) of a fixed-width binary file of `dtype` x `width` records.

    Runs of adjacent rows are read at once; no memory map, so the file never counts toward the
    task's resident memory (random rows of a multi-GB signature file would).
    """
    size = dtype.itemsize * width
    out = np.empty((len(rows), width), dtype=dtype)
    if not len(rows):
        return out if width > 1 else out[:, 0]
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.append(breaks, len(rows))
    with folder.open(path, "rb") as f:
        for s, e in zip(starts.tolist(), ends.tolist()):
            f.seek(int(rows[s]) * size)
            out[s:e] = np.frombuffer(f.read(size * (e - s)), dtype=dtype).reshape(e - s, width)
    return out if width > 1 else out[:, 0]


def _load_rows(folder, keys: np.ndarray, suffix: str, dtype, width: int) -> np.ndarray:
    """Rows of the per-task `docsigs/NNNNN.<suffix>` files for `keys` (sorted, unique (task << 32 | index))."""
    parts = []
    files = keys >> np.uint64(32)
    for f in np.unique(files).tolist():
        docs = (keys[files == f] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        parts.append(_read_rows(folder, f"docsigs/{f:05d}.{suffix}", docs, np.dtype(dtype), width))
    if not parts:
        return np.empty((0, width) if width > 1 else (0,), dtype=dtype)
    return np.concatenate(parts)


def _keys(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(task << 32 | index) keys of both sides of datatrove `.dups` records (uint32 x 4)."""
    a = (rec[:, 0].astype(np.uint64) << np.uint64(32)) | rec[:, 1]
    b = (rec[:, 2].astype(np.uint64) << np.uint64(32)) | rec[:, 3]
    return a, b


def band_groups(f, chunk: int, max_group: int):
    """Candidate pairs of one `.dups` file, streamed: yields (pairs uint64[n, 2], from_large bool[n]).

    datatrove's buckets step writes, for a run of documents with equal band values A, B, C, only the
    chain A-B, B-C: enough for its plain union, not for verification (A-C may be the pair that
    verifies). Each document has one value per band, so consecutive chain links rebuild the groups
    exactly; groups of up to `max_group` members are expanded to all their pairs, larger ones (mass
    boilerplate) to the chain plus every member against the group's first. The file is read `chunk`
    records at a time; only an open group of at most `max_group` members is carried between chunks,
    so memory does not depend on the file's size.
    """
    carry = np.empty((0, 2), dtype=np.uint64)  # records of the open small group
    large_first = None  # first member of an open large group, whose pairs were already emitted
    prev_b = None
    while True:
        raw = np.frombuffer(f.read(chunk * 16), dtype="<u4").reshape(-1, 4)
        raw = raw[raw[:, 0] != SENTINEL]  # index matches: twbert's incremental dedup uses datasketch
        eof = len(raw) == 0
        if eof:
            a = b = np.empty(0, dtype=np.uint64)
        else:
            a, b = _keys(raw)
        cont = np.concatenate([[prev_b is not None and len(a) > 0 and a[0] == prev_b], a[1:] == b[:-1]]) if len(a) else np.empty(0, bool)
        starts = np.flatnonzero(~cont)
        # The records before the first start continue the open group.
        head = starts[0] if len(starts) else len(a)
        if large_first is not None:
            if head:
                pairs = np.concatenate([np.stack([a[:head], b[:head]], 1), np.stack([np.full(head, large_first), b[:head]], 1)])
                yield pairs, np.ones(len(pairs), bool)
            if head < len(a) or eof:
                large_first = None
        else:
            carry = np.concatenate([carry, np.stack([a[:head], b[:head]], 1)])
            if head < len(a) or eof:
                if len(carry):
                    yield _expand(carry, max_group)
                carry = np.empty((0, 2), dtype=np.uint64)
            elif len(carry) + 1 > max_group:  # grew too large to expand: chain + star from here on
                large_first = carry[0, 0]
                yield np.concatenate([carry, np.stack([np.full(len(carry), large_first), carry[:, 1]], 1)]), \
                    np.ones(2 * len(carry), bool)
                carry = np.empty((0, 2), dtype=np.uint64)
        if eof:
            return
        prev_b = b[-1]
        ends = np.append(starts[1:], len(a))
        closed = ends < len(a)  # the last group may continue in the next chunk
        sizes = ends - starts
        one = closed & (sizes == 1)
        if one.any():
            yield np.stack([a[starts[one]], b[starts[one]]], 1), np.zeros(int(one.sum()), bool)
        for s_, e_ in zip(starts[closed & ~one].tolist(), ends[closed & ~one].tolist()):
            yield _expand(np.stack([a[s_:e_], b[s_:e_]], 1), max_group)
        if len(starts):
            s_ = starts[-1]
            rec = np.stack([a[s_:], b[s_:]], 1)
            if len(rec) + 1 > max_group:  # already too large to expand: chain + star from here on
                large_first = rec[0, 0]
                pairs = np.concatenate([rec, np.stack([np.full(len(rec), large_first), rec[:, 1]], 1)])
                yield pairs, np.ones(len(pairs), bool)
            else:
                carry = rec


def _expand(rec: np.ndarray, max_group: int):
    """All pairs of a band group given as its chain records, or chain + star when it is large."""
    members = np.append(rec[:, 0], rec[-1, 1])
    k = len(members)
    if k <= max_group:
        i, j = np.triu_indices(k, 1)
        return np.stack([members[i], members[j]], 1), np.zeros(len(i), bool)
    pairs = np.concatenate([rec, np.stack([np.full(k - 1, members[0]), members[1:]], 1)])
    return pairs, np.ones(len(pairs), bool)


class TwMinhashPairs(PipelineStep):
    """Stage 3 (K tasks): candidate pairs of the band groups, verified on the full signatures.

    Task k of K reads the `.dups` files k, k+K, ... (one band each), streams them into candidate
    pairs, and verifies them in blocks of `block` pairs, reading only the signature rows a block
    needs. A pair that agrees on several bands is a candidate of each: it is kept only in the first
    band it agrees on (from a large group, in every band), so each verified pair is written about
    once and `candidate_pairs` counts distinct pairs. Writes each verified pair in both directions
    (uint64 keys, key = task << 32 | index) to `NNNNN-PPPPP.edges`, partitioned for the first
    large-star round (twbert.pipeline.components), and `NNNNN.count` (uint64 candidate and verified
    counts).

    Memory is bounded by `block`, whatever the corpus size: about `block` x 4.5 KB above the
    process baseline (measured with 125-value signatures: the block's rows, their slices, the pairs).
    """

    type = "🫂 - DEDUP"
    name = "🎯 MinHash pairs (verified)"

    def __init__(self, input_folder: DataFolderLike, signatures_folder: DataFolderLike,
                 output_folder: DataFolderLike, config: MinhashConfig, threshold: float, parts: int = 1,
                 block: int = 1 << 14, max_group: int = 256):
        super().__init__()
        self.parts = int(parts)
        self.block = int(block)
        self.max_group = int(max_group)
        self.input_folder = get_datafolder(input_folder)
        self.signatures_folder = get_datafolder(signatures_folder)
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.threshold = float(threshold)

    def _verify(self, pairs: np.ndarray, large: np.ndarray, band: int) -> tuple[np.ndarray, int]:
        """The verified pairs of a block, and how many of its pairs count as candidates here."""
        pairs = np.stack([pairs.min(1), pairs.max(1)], 1)
        pairs, first = np.unique(pairs, axis=0, return_index=True)
        large = large[first]
        keys, inverse = np.unique(pairs.reshape(-1), return_inverse=True)
        inverse = inverse.reshape(-1, 2)
        width = self.config.num_buckets * self.config.hashes_per_bucket
        sigs = _load_rows(self.signatures_folder, keys, "sig", "<u8", width)
        ok = np.empty(len(pairs), dtype=bool)
        mine = large.copy()
        for i in range(0, len(pairs), 8192):  # compare in slices: no second copy of the block's signatures
            inv = inverse[i : i + 8192]
            eq = sigs[inv[:, 0]] == sigs[inv[:, 1]]
            bands = eq.reshape(len(inv), self.config.num_buckets, self.config.hashes_per_bucket).all(axis=2)
            mine[i : i + 8192] |= bands.argmax(axis=1) == band
            ok[i : i + 8192] = eq.mean(axis=1) >= self.threshold
        ok &= mine
        return pairs[ok], int(mine.sum())

    def _blocks(self, f):
        """The candidate pairs of one `.dups` file in blocks of about `block` pairs."""
        buf, flags, held = [], [], 0
        for pairs, large in band_groups(f, self.block, self.max_group):
            buf.append(pairs), flags.append(large)
            held += len(pairs)
            if held >= self.block:
                yield np.concatenate(buf), np.concatenate(flags)
                buf, flags, held = [], [], 0
        if buf:
            yield np.concatenate(buf), np.concatenate(flags)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        files = self.input_folder.list_files(glob_pattern="*.dups")
        if len(files) % self.config.num_buckets:
            raise ValueError(f"{self.input_folder.path}: {len(files)} .dups files for {self.config.num_buckets} buckets")
        candidates = verified = 0
        out = components.EdgeWriter(self.output_folder, rank, self.parts)
        with self.track_time():
            try:
                for name in files[rank::world_size]:
                    band = int(Path(name).name.split("_")[0])
                    with self.input_folder.open(name, "rb") as f:
                        for pairs, large in self._blocks(f):
                            edges, n = self._verify(pairs, large, band)
                            candidates += n
                            verified += len(edges)
                            # both ends, keyed for the first large-star round
                            out.write(edges.reshape(-1), edges[:, ::-1].reshape(-1))
            finally:
                out.close()
        with self.output_folder.open(f"{rank:05d}.count", "wb") as out:
            out.write(np.array([candidates, verified], dtype="<u8").tobytes())
        self.stat_update("candidate_pairs", value=candidates)
        self.stat_update("verified_pairs", value=verified)


class TwMinhashCluster(PipelineStep):
    """Stage (K tasks): each component of the verified pairs gets its survivor by policy.

    Reads the input of the first large-star stage that found it settled (twbert.pipeline.components):
    disjoint stars, each centred on its component's smallest key, so the group of a centre in task
    `rank` is a whole cluster. Memory is bounded by the same budget as the star stages. Writes, per
    signature task F that has any, `FFFFFF-RRRRR.remove` (uint32 document indexes to drop, sorted) and
    `FFFFFF-RRRRR.sizes` ((uint32 index, uint32 cluster size) of each survivor, sorted).
    """

    type = "🫂 - DEDUP"
    name = "🎯 MinHash clusters (verified, policy survivors)"

    def __init__(self, star_inputs: list, star_outputs: list, pairs_folder: DataFolderLike,
                 signatures_folder: DataFolderLike, output_folder: DataFolderLike, parts: int, memory_gb: float):
        super().__init__()
        self.star_inputs = [get_datafolder(f) for f in star_inputs]
        self.star_outputs = [get_datafolder(f) for f in star_outputs]
        self.pairs_folder = get_datafolder(pairs_folder)
        self.signatures_folder = get_datafolder(signatures_folder)
        self.output_folder = get_datafolder(output_folder)
        self.parts = int(parts)
        self.budget = int(memory_gb * 2**30)

    def _settled(self):
        from twbert.errors import UsageError

        at = components.converged(self.star_outputs)
        if at is None:
            raise UsageError(
                f"dedup: the near-duplicate clusters did not settle in dedup.cc_rounds = {len(self.star_outputs)} "
                "rounds (a long chain of near-duplicates). Raise dedup.cc_rounds and rerun the same command: "
                "the completed stages are kept")
        return at

    def _survivors(self, rec: np.ndarray):
        """(removed keys, survivor keys, cluster sizes) of the whole stars in `rec` (sorted (u, v))."""
        u, v = rec[:, 0], rec[:, 1]
        g, starts = components.groups(u)
        centre = v[starts] > u[starts]  # no smaller neighbour: the component's smallest key
        member = centre[g]
        nodes = np.concatenate([u[starts][centre], v[member]])
        label = np.concatenate([u[starts][centre], u[member]])
        order = np.argsort(nodes)
        nodes, label = nodes[order], label[order]
        meta = _load_rows(self.signatures_folder, nodes, "meta", META_DTYPE, 1)
        # survivor first: higher tier, wiki, longer; then smaller id hash, then smaller (task, index)
        order = np.lexsort((nodes, meta["idhash"], -meta["length"].astype(np.int64),
                            -meta["source"].astype(np.int64), -meta["tier"].astype(np.int64), label))
        label, nodes = label[order], nodes[order]
        head = np.concatenate([[True], label[1:] != label[:-1]]) if len(label) else np.empty(0, bool)
        starts = np.flatnonzero(head)
        sizes = np.diff(np.append(starts, len(label)))
        return nodes[~head], nodes[starts], sizes

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        assert world_size == self.parts, f"the cluster step runs as {self.parts} tasks, not {world_size}"
        with self.track_time():
            at = self._settled()
            if rank == 0:
                counts = np.zeros(2, dtype=np.uint64)
                for x in self.pairs_folder.list_files(glob_pattern="*.count"):
                    with self.pairs_folder.open(x, "rb") as f:
                        counts += np.frombuffer(f.read(), dtype="<u8")
                self.stat_update("candidate_pairs", value=int(counts[0]))
                self.stat_update("verified_pairs", value=int(counts[1]))
                self.stat_update("cc_rounds", value=at + 1)
            for stale in self.output_folder.list_files(glob_pattern=f"*-{rank:05d}.*"):
                self.output_folder.rm(stale)  # a killed run's files for signature tasks this run may not write
            spill = Path(self.output_folder.path) / f"spill_{rank:05d}"
            runs = Path(self.output_folder.path) / f"runs_{rank:05d}"
            runs.mkdir(parents=True, exist_ok=True)
            n_runs = removed_total = 0
            for rec in components.grouped(self.star_inputs[at], rank, self.budget, spill):
                removed, best, sizes = self._survivors(rec)
                for size in sizes.tolist():
                    self.stat_update("clusters")
                    self.stat_update("cluster_size", value=size, unit="cluster")
                removed_total += len(removed)
                # keys sort by signature task first: each run is in task order
                np.sort(removed).astype("<u8").tofile(runs / f"{n_runs:05d}.remove")
                order = np.argsort(best)
                np.stack([best[order], sizes[order].astype(np.uint64)], 1).astype("<u8").tofile(runs / f"{n_runs:05d}.sizes")
                n_runs += 1
            self.stat_update("to_remove", value=removed_total)
            self._write_per_task(runs, n_runs, rank)
            shutil.rmtree(runs, ignore_errors=True)
        logger.info(f"{removed_total} documents to remove")

    def _write_per_task(self, runs: Path, n_runs: int, rank: int) -> None:
        """Merge the runs into one `.remove` and `.sizes` file per signature task, one task at a time
        (memory: one signature task's near-duplicates)."""
        low = np.uint64(0xFFFFFFFF)
        for suffix, width in (("remove", 1), ("sizes", 2)):
            paths = [runs / f"{i:05d}.{suffix}" for i in range(n_runs)]
            keys = [np.memmap(p, dtype="<u8", mode="r").reshape(-1, width) for p in paths if p.stat().st_size]
            cursor = [0] * len(keys)
            while True:
                heads = [int(k[c, 0]) >> 32 for k, c in zip(keys, cursor) if c < len(k)]
                if not heads:
                    break
                f = min(heads)
                parts = []
                for i, k in enumerate(keys):
                    end = int(np.searchsorted(k[:, 0], np.uint64(f + 1) << np.uint64(32)))
                    parts.append(np.asarray(k[cursor[i]:end]))
                    cursor[i] = end
                rows = np.concatenate(parts)
                rows = rows[np.argsort(rows[:, 0], kind="stable")]
                with self.output_folder.open(f"{f:06d}-{rank:05d}.{suffix}", "wb") as out:
                    out.write(np.stack([rows[:, 0] & low, *rows[:, 1:].T], 1).astype("<u4").tobytes())
            del keys


class TwMinhashFilter(BaseFilter):
    """Stage 5: drop every cluster member but its survivor; tag survivors with `dup_cluster_size`."""

    name = "🎯 MinHash filter"

    def __init__(self, input_folder: DataFolderLike, parts: int, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.data_folder = get_datafolder(input_folder)
        self.parts = int(parts)  # tasks of the cluster step, each writing its part of a task's files

    def _load(self, rank: int, suffix: str, width: int) -> np.ndarray:
        parts = [np.empty((0, width), dtype="<u4")]
        for r in range(self.parts):
            name = f"{rank:06d}-{r:05d}.{suffix}"
            if self.data_folder.exists(name):
                with self.data_folder.open(name, "rb") as f:
                    parts.append(np.frombuffer(f.read(), dtype="<u4").reshape(-1, width))
        return np.concatenate(parts)

    def filter(self, doc) -> bool | tuple[bool, str]:
        idx = self._idx
        self._idx += 1
        if idx in self._remove:
            return False, "near_duplicate"
        size = self._sizes.get(idx, 1)
        doc.metadata["dup_cluster_size"] = size
        if size > 1:
            self.stat_update("near_duplicate_survivors")
        return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        # filter() sees one document at a time; the cluster step names them by index within the task.
        self._remove = set(self._load(rank, "remove", 1)[:, 0].tolist())
        self._sizes = dict(self._load(rank, "sizes", 2).tolist())
        self._idx = 0
        yield from super().run(data, rank, world_size)


def stages(cfg: dict, input_dir, output_dir, work_dir) -> list:
    """The dedup stages for `twbert build`: documents in `input_dir` -> kept documents in `output_dir`."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.stage import Stage

    dcfg = cfg["dedup"]
    mh = minhash_config(dcfg)
    work = Path(work_dir)
    from twbert.pipeline.removed import exclusion_writer

    tasks = int(cfg["executor"]["tasks"])
    k = int(dcfg.get("pair_tasks") or tasks)  # tasks of every stage from dedup_pairs to dedup_clusters
    budget = float(dcfg.get("cluster_memory_gb", 1))
    # Connected components: cc_rounds rounds of large-star then small-star; the last round has no
    # small-star (only a large-star tells whether its input settled).
    star_in, star_out, star_stages = [], [], []
    prev = work / "pairs"
    rounds = int(dcfg.get("cc_rounds", 10))
    for r in range(1, rounds + 1):
        for kind in ("large", "small") if r < rounds else ("large",):
            folder = work / "components" / f"{r:02d}_{kind}"
            step = components.StarStage(kind, str(prev), str(folder), k, list(star_out), budget)
            star_stages.append(Stage(f"dedup_{kind}_star_{r}", [step], k, needed=step.needed))
            if kind == "large":
                star_in.append(str(prev)), star_out.append(str(folder))
            prev = folder
    compression = (cfg.get("output") or {}).get("compression")
    para = dcfg.get("paragraphs") or {}
    kept_dir = work / "near_dedup_documents" if para.get("enabled") else Path(output_dir)

    def reader():
        # Stage 1 and stage 4 must see each task's documents in the same order: same reader, same tasks.
        return JsonlReader(str(input_dir), add_file_path=False)  # work/ paths are not provenance

    out = [
        Stage("dedup_signatures", [reader(), TwMinhashSignature(str(work / "signatures"), mh, dcfg.get("fold"))], tasks),
        Stage("dedup_buckets", [_buckets(work, mh)], mh.num_buckets),
        Stage("dedup_pairs", [TwMinhashPairs(str(work / "buckets"), str(work / "signatures"), str(work / "pairs"),
                                             mh, dcfg["threshold"], parts=k, block=int(dcfg.get("block_pairs", 1 << 14)))],
              k),
        *star_stages,
        Stage("dedup_clusters", [TwMinhashCluster(star_in, star_out, str(work / "pairs"), str(work / "signatures"),
                                                  str(work / "clusters"), k, budget)], k),
        Stage("dedup_filter", [reader(), TwMinhashFilter(str(work / "clusters"), k, exclusion_writer=exclusion_writer(
                                   cfg, "dedup_filter", TwMinhashFilter.name)),
                               JsonlWriter(str(kept_dir), compression=compression)], tasks),
    ]
    if para.get("enabled"):
        from twbert.pipeline import paragraphs

        out += paragraphs.stages(cfg, kept_dir, output_dir, work / "paragraphs")
    return out


def _buckets(work: Path, mh: MinhashConfig):
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

    return MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=mh)

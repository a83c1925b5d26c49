"""DRCD span round trip: how many gold answers survive OpenCC, re-alignment, tokenisation and strided
windows exactly, per tokenizer kind, and the EM/F1 ceiling the tokenisation leaves.

    python benchmarks/bench_finetune_roundtrip.py [--drcd ../shared/data/drcd_test.json] [--vocab 4000]
                                                  [--tokenizer DIR ...]

Tokenizers: a BERT-Chinese-style WordPiece (one token per CJK character; vocabulary = DRCD's
characters) and twbert's byte-level BPE (`twbert tokenizer train`'s trainer) fitted on all DRCD
contexts with --vocab tokens, plus any tokenizer directories given. The ceiling scores, with the
official CMRC 2018 algorithm, the best a model could answer: for each question the text its gold
answer's tokens give. Prints one JSON object per tokenizer and the CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from twbert.finetune import convert, qa, scoring, tasks

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drcd", default=str(ROOT.parent / "shared" / "data" / "drcd_test.json"))
    ap.add_argument("--vocab", type=int, default=4000, help="BPE vocabulary fitted on the DRCD contexts")
    ap.add_argument("--opencc", default="s2twp")
    ap.add_argument("--tokenizer", nargs="*", default=[], help="more tokenizer directories to check")
    a = ap.parse_args()
    if not Path(a.drcd).is_file():
        print(f"{a.drcd} not found: nothing to measure (see ../shared/data/README.md)")
        sys.exit(0)
    from transformers import AutoTokenizer, BertTokenizerFast

    from twbert.shards.tokenizer import train

    t = time.process_time()
    read = tasks.read("drcd", a.drcd)
    examples, unaligned = convert.convert_qa(read.examples, convert.converter(a.opencc))
    moved = sum(ex.answers[i][1] != orig.answers[i][1] for ex, orig in zip(examples, read.examples)
                for i in range(len(ex.answers)))
    print(json.dumps({"questions": read.read, "answers": sum(len(e.answers) for e in examples), "opencc": a.opencc,
                      "unaligned": len(unaligned), "answers_moved_by_conversion": moved,
                      "cpu_s": round(time.process_time() - t, 2)}, ensure_ascii=False))

    work = Path(tempfile.mkdtemp(prefix="roundtrip-"))
    chars = sorted({c for e in examples for c in e.context + e.question if not c.isspace()})
    (work / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                                    encoding="utf-8")
    (work / "ctx.txt").write_text("\n".join(sorted({e.context for e in examples})) + "\n", encoding="utf-8")
    train([work / "ctx.txt"], a.vocab, work / "bpe", show_progress=False)
    toks = {"wordpiece-char": BertTokenizerFast(str(work / "vocab.txt"), do_lower_case=False),
            f"byte-level-bpe-{a.vocab}": AutoTokenizer.from_pretrained(str(work / "bpe")),
            **{d: AutoTokenizer.from_pretrained(d) for d in a.tokenizer}}
    gold = {e.qid: [t for t, _ in e.answers] for e in examples}
    for name, tok in toks.items():
        for stride in (128, None) if name in ("wordpiece-char",) else (128,):
            t = time.process_time()
            report = qa.span_round_trip(examples, tok, 512 if stride else 100_000, stride)
            gives = {(f["id"], f["answer"]): f.get("tokens_give", "") for f in report.pop("failures")}
            best = {e.qid: gives.get((e.qid, e.answers[0][0]), e.answers[0][0]) for e in examples}
            ceiling = scoring.score_qa(gold, best)
            print(json.dumps({"tokenizer": name, "doc_stride": stride, **report,
                              "ceiling_em": round(ceiling["em"], 2), "ceiling_f1": round(ceiling["f1"], 2),
                              "examples": [f"{k[1]} -> {v}" for k, v in list(gives.items())[:5]],
                              "cpu_s": round(time.process_time() - t, 2)}, ensure_ascii=False))


if __name__ == "__main__":
    main()

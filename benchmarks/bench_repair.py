"""Cost of the rerun check of a JSONL task output (twbert/outputs.py), against writing that output.

Writes DRCD's Taiwan-Wikipedia paragraphs (shared/data/drcd_test.json; skips cleanly without it),
repeated, as one task's documents with datatrove's JsonlWriter (gzip), then runs the check a rerun
makes on it (read the gzip stream to its end, count the documents). Prints CPU seconds of this
process, MB/s of uncompressed JSONL, and the check's share of the write it saves a rerun from redoing.

    python benchmarks/bench_repair.py [--repeat 20] [--drcd PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRCD = HERE.parent.parent / "shared" / "data" / "drcd_test.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="copies of DRCD's paragraphs written (default 20)")
    ap.add_argument("--drcd", type=Path, default=DRCD, help=f"DRCD test set (default {DRCD})")
    args = ap.parse_args()
    if not args.drcd.is_file():
        print(f"skipped: {args.drcd} not found (DRCD test set)")
        return 0
    from datatrove.data import Document
    from datatrove.pipeline.writers import JsonlWriter

    from twbert.outputs import jsonl_writer

    data = json.loads(args.drcd.read_text(encoding="utf-8"))
    paras = [p["context"] for art in data["data"] for p in art["paragraphs"]] * args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        writer = JsonlWriter(tmp, output_filename="${rank}.jsonl", compression="gzip")
        t0 = time.process_time()
        with writer:
            for i, text in enumerate(paras):
                writer.write(Document(text=text, id=str(i), metadata={"source": "wiki"}), rank=0)
        write_s = time.process_time() - t0
        raw_mb = sum(len(json.dumps({"text": t, "id": str(i), "metadata": {"source": "wiki"}},
                                    ensure_ascii=False).encode()) + 1 for i, t in enumerate(paras)) / 1e6
        gz_mb = (Path(tmp) / "00000.jsonl.gz").stat().st_size / 1e6
        check = jsonl_writer(writer)
        stats = [{"name": writer.name, "stats": {"total": len(paras)}}]
        t0 = time.process_time()
        why = check(0, stats)
        check_s = time.process_time() - t0
    assert why is None, why
    print(f"{len(paras):,} documents, {raw_mb:.1f} MB JSONL ({gz_mb:.1f} MB gzip)")
    print(f"write (JsonlWriter, gzip): {write_s:.2f} CPU s = {raw_mb / write_s:.1f} MB/s")
    print(f"rerun check (read to the end, count): {check_s:.2f} CPU s = {raw_mb / check_s:.1f} MB/s, "
          f"{check_s / write_s:.1%} of the write")
    return 0


if __name__ == "__main__":
    sys.exit(main())

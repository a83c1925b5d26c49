"""DRCD on one GPU: a twbert export against a BERT-style baseline, HFL's protocol, dev EM/F1.

    python benchmarks/bench_finetune_gpu.py --export RUN/hf --baseline BERT_DIR \\
        --train DRCD_training.json --dev DRCD_dev.json [--out runs/drcd] [--seeds 1] [--long 4096]

Runs `twbert finetune drcd` (DRCD's defaults: lr 3e-5, 2 epochs, batch 64, max length 512, doc
stride 128, OpenCC s2twp, bf16) for the export and for the baseline, then the export once more with
--no-stride at --long tokens (the whole context in one window, where a long-context encoder should
gain), and prints `twbert finetune table` of the three beside HFL's published rows, with the wall
time and peak GPU memory of each run. scripts/gpu_finetune.sh sets up the lent GPU machine for it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from twbert.finetune.run import finetune
from twbert.finetune.table import render_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="twbert export (or run) directory")
    ap.add_argument("--baseline", required=True, help="a BERT-style Hugging Face encoder directory")
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--out", default="runs/drcd")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--long", type=int, default=4096, help="--max-length of the no-stride run (0: skip it)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap the steps (a smoke run)")
    a = ap.parse_args()
    out = Path(a.out)
    runs = [("export", a.export, {}), ("baseline", a.baseline, {})]
    if a.long:
        runs.append((f"export-no-stride-{a.long}", a.export, {"stride": False, "max_length": a.long,
                                                               "micro_batch_size": 8}))
    timings = {}
    for name, model, extra in runs:
        cfg = {"seeds": a.seeds, **extra, **({"max_steps": a.max_steps} if a.max_steps else {})}
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t = time.time()
        finetune("drcd", model, a.train, a.dev, out / name, cfg=cfg)
        timings[name] = {"wall_s": round(time.time() - t, 1),
                         "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}
        print(json.dumps({name: timings[name]}), flush=True)
    terminal, markdown = render_table([out / name for name, _, _ in runs])
    print(terminal)
    (out / "table.md").write_text(markdown + "\n", encoding="utf-8")
    (out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

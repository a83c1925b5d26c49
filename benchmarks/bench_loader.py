"""Loader throughput: pack + mask tokens/s in one process, and end to end from real MDS shards.

    python benchmarks/bench_loader.py [--seconds 5] [--tokens-per-batch 65536]

1. pack + mask (training/packing.py + training/masking.py), the work done per micro-batch in the
   trainer's process, on chunks cut to max_len 1024 and 8192; compared with transformers'
   DataCollatorForLanguageModeling (token-level masking of padded batches: the usual alternative)
   on the same sequences.
2. MLMLoader end to end (read MDS shards with streaming, cut, pack, mask) with 0 workers: the
   whole pipeline in one process.
Target: >= 2M tokens/s per process for pack + mask.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def chunks(rng, n_tokens: int, max_len: int, vocab: int = 150_000):
    """Chunks of web-like lengths (many short, a long tail), word ids of 1-3 tokens (Chinese words)."""
    out, total = [], 0
    while total < n_tokens:
        n = int(min(rng.lognormal(6.0, 1.2), 8190)) + 1
        ids = rng.integers(10, vocab, size=n).astype(np.uint32)
        words = np.repeat(np.arange(n), rng.integers(1, 4, size=n))[:n].astype(np.int32)
        out.append((ids, words))
        total += n
    return out


def bench_pack_mask(max_len: int, tokens_per_batch: int, seconds: float) -> dict:
    from twbert.training.dataset import cut
    from twbert.training.masking import Masker
    from twbert.training.packing import Packer

    rng = np.random.default_rng(0)
    data = chunks(rng, 4_000_000, max_len)
    masker = Masker(mask_id=4, special_ids=(0, 1, 2, 3, 4), vocab_size=150_000, seed=0)
    mask = lambda ids, words, parts, keys: masker.mask_flat(ids, words, parts, keys, 0.3)  # noqa: E731
    packer = Packer(tokens_per_batch, 2, 3)
    tokens = batches = masked = 0
    i = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        while packer.tokens < 4 * tokens_per_batch:
            ids, words = data[i % len(data)]
            for k, (p_ids, p_words) in enumerate(cut(ids, words, max_len - 2)):
                packer.add([(p_ids, p_words, (0, i, k))])
            i += 1
        b = packer.pop(mask)
        tokens += b["num_tokens"]
        masked += int((b["labels"] != -100).sum())
        batches += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"tokens_per_s": tokens / dt, "tokens_per_cpu_s": tokens / cpu, "fill": tokens / (batches * tokens_per_batch),
            "masked": masked / tokens, "batches": batches}


def bench_hf_collator(max_len: int, tokens_per_batch: int, seconds: float) -> dict | None:
    try:
        from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast
    except ImportError:
        return None
    from loader_run import write_tokenizer

    with tempfile.TemporaryDirectory() as d:
        write_tokenizer(Path(d))
        tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(d) / "tokenizer.json"), pad_token="[PAD]",
                                      mask_token="[MASK]", cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]")
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.3, return_tensors="pt")
    rng = np.random.default_rng(0)
    from twbert.training.dataset import cut

    seqs = []
    for ids, _ in chunks(rng, 2_000_000, max_len, vocab=1000):
        seqs += [[2, *p.tolist(), 3] for p, _ in cut(ids, None, max_len - 2)]
    per_batch = max(1, tokens_per_batch // max_len)  # padded batches of the same token budget
    real = 0
    t0, c0 = time.perf_counter(), time.process_time()
    j = 0
    while time.perf_counter() - t0 < seconds:
        batch = [{"input_ids": seqs[(j + k) % len(seqs)]} for k in range(per_batch)]
        j += per_batch
        collator(batch)
        real += sum(len(x["input_ids"]) for x in batch)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"tokens_per_s": real / dt, "tokens_per_cpu_s": real / cpu}


def bench_end_to_end(seconds: float) -> dict:
    from loader_run import write_shards

    from twbert.training.loader import MLMLoader

    with tempfile.TemporaryDirectory() as d:
        write_shards(Path(d), {"wiki-tw": 1500, "web-tw": 1500}, max_tokens=4000)
        loader = MLMLoader({"max_len": 1024, "tokens_per_batch": 65536, "num_workers": 0,
                            "clean_stale_shm": False}, d)
        next(loader)  # start-up outside the timing
        tokens = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            tokens += next(loader)["num_tokens"]
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        stats = loader.stats()
        loader.close()
    return {"tokens_per_s": tokens / dt, "tokens_per_cpu_s": tokens / cpu, "fill": stats["fill"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    ap.add_argument("--tokens-per-batch", type=int, default=65536, help="micro-batch token budget")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"pack + mask, one process, tokens_per_batch={a.tokens_per_batch}, rate 0.30, n-gram whole-word")
    print("  (wall: tokens per second of wall time; cpu: per second of this process's CPU time, i.e. per")
    print("   worker with a core to itself; the two differ when the machine is shared)")
    for max_len in (1024, 8192):
        r = bench_pack_mask(max_len, a.tokens_per_batch, a.seconds)
        hf = bench_hf_collator(max_len, a.tokens_per_batch, a.seconds)
        print(f"  max_len {max_len:5d}: twbert {r['tokens_per_s'] / 1e6:5.2f} M tokens/s wall, "
              f"{r['tokens_per_cpu_s'] / 1e6:5.2f} M cpu; fill {r['fill']:.3f}; masked {r['masked']:.3f}", flush=True)
        if hf:
            print(f"                  transformers DataCollatorForLanguageModeling (token-level, padded): "
                  f"{hf['tokens_per_s'] / 1e6:5.2f} M wall, {hf['tokens_per_cpu_s'] / 1e6:5.2f} M cpu; "
                  f"twbert / transformers = {r['tokens_per_cpu_s'] / hf['tokens_per_cpu_s']:.1f}x", flush=True)
    e = bench_end_to_end(a.seconds)
    print(f"MLMLoader end to end (MDS read + decode + cut + pack + mask, 0 workers, max_len 1024): "
          f"{e['tokens_per_s'] / 1e6:.2f} M tokens/s wall, {e['tokens_per_cpu_s'] / 1e6:.2f} M cpu; fill {e['fill']:.3f}")


if __name__ == "__main__":
    main()

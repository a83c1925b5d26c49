"""Peak memory of the MLM decoder + loss, forward and backward: the old dense path against the chunked one.

    .venv/bin/python benchmarks/bench_head_memory.py [--masked 2048] [--hidden 768] [--vocab 151680]
        [--dtype fp32|bf16] [--layers 0 --tokens T]

Each case runs in a fresh process on the CPU, and its peak is the kernel's peak resident set
(VmHWM, reset just before the measured step through /proc/self/clear_refs) less the resident set at
that moment: every tensor bigger than a few
MB is its own mmap that glibc returns on free, so resident memory follows what torch holds.
(tracemalloc does not see torch's allocations.)

- old: what training/model.py did before the chunked head (git 49af5d9): `decoder(x)` logits, their
  fp32 copy, F.cross_entropy, backward; the logits stay referenced through backward, as the
  trainer's `out_["logits"]` kept them.
- new: training/head_loss.linear_cross_entropy.

With --layers N (and --tokens T) it measures instead a whole training step of an N-layer encoder
of width --hidden on T tokens (packed 512-token sequences, --masked of them masked): the check of
the memory model in docs/training.md. Prints one JSON line per case and the new/old ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss() -> int:
    """Resident memory now; also resets the peak (VmHWM) to it, so peak() sees only what follows."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS:")


def peak() -> int:
    return _status("VmHWM:")


def head_case(args) -> dict:
    import torch
    import torch.nn.functional as F

    from twbert.training.head_loss import chunk_rows_for, linear_cross_entropy

    torch.manual_seed(0)
    w = (torch.randn(args.vocab, args.hidden) * 0.02).requires_grad_()
    b = torch.zeros(args.vocab, requires_grad=True)
    x = torch.randn(args.masked, args.hidden, requires_grad=True)
    t = torch.randint(0, args.vocab, (args.masked,))
    ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    before, t0 = rss(), time.process_time()
    if args.case == "old":
        with ac:
            logits = F.linear(x, w, b)
            loss = F.cross_entropy(logits.float(), t, reduction="sum")
        loss.backward()
        del logits
    else:
        with ac:
            loss = linear_cross_entropy(x, w, b, t)
        loss.backward()
    return {"case": args.case, "masked": args.masked, "hidden": args.hidden, "vocab": args.vocab,
            "dtype": args.dtype, "chunk_rows": chunk_rows_for(args.vocab) if args.case == "new" else None,
            "peak_mb": round((peak() - before) / 2**20, 1), "cpu_s": round(time.process_time() - t0, 1),
            "loss": float(loss)}


def step_case(args) -> dict:
    import torch

    from twbert.training.model import EncoderConfig, EncoderForMLM, pack

    torch.manual_seed(0)
    c = EncoderConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                      num_attention_heads=args.hidden // 64, intermediate_size=args.hidden * 3 // 2,
                      attn_backend="sdpa")
    m = EncoderForMLM(c)
    m.model.checkpoint_layers = args.case == "checkpointed"
    n_seq = args.tokens // 512
    batch = pack([torch.randint(5, args.vocab, (512,)).tolist() for _ in range(n_seq)])
    pos = torch.randperm(batch["num_tokens"])[:args.masked].sort().values
    inputs = {k: batch[k] for k in ("input_ids", "position_ids", "cu_seqlens", "max_seqlen")}
    saved = {}  # storage -> bytes of every tensor autograd keeps for backward (counted once)

    def keep(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    before, t0 = rss(), time.process_time()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        out = m(**inputs, masked_positions=pos, masked_targets=batch["input_ids"][pos])
    saved_bytes = sum(saved.values())
    out["loss_sum"].backward()
    params = sum(p.numel() for p in m.parameters())
    return {"case": args.case, "layers": args.layers, "hidden": args.hidden, "vocab": args.vocab,
            "tokens": batch["num_tokens"], "masked": args.masked, "params": params,
            "saved_mb": round(saved_bytes / 2**20, 1), "peak_mb": round((peak() - before) / 2**20, 1),
            "cpu_s": round(time.process_time() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--masked", type=int, default=2048, help="masked tokens (rows of the head)")
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--vocab", type=int, default=151680)
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = under bf16 autocast")
    p.add_argument("--layers", type=int, default=0, help="measure a whole training step of this many layers")
    p.add_argument("--tokens", type=int, default=4096, help="tokens of the whole-step case (512-token sequences)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        print(json.dumps(step_case(args) if args.layers else head_case(args)))
        return
    cases = ("plain", "checkpointed") if args.layers else ("old", "new")
    results = {}
    for case in cases:
        argv = sys.argv[1:]
        res = subprocess.run([sys.executable, __file__, *argv, "--case", case], capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "2"}, check=True)
        results[case] = json.loads(res.stdout.strip().splitlines()[-1])
        print(json.dumps(results[case]), flush=True)
    a, b = (results[c]["peak_mb"] for c in cases)
    print(json.dumps({"ratio": round(b / a, 3), "of": f"{cases[1]}/{cases[0]} peak"}))


if __name__ == "__main__":
    main()

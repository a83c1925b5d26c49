"""The GPU-only measurements of scripts/gpu_check.sh, one JSON file each under OUT.

    python scripts/gpu_check.py OUT attention|memory      [--dry-run]

- attention: one global layer's attention (fwd+bwd, bf16, 12 x 64 heads) on fresh packed geometries
  (new lengths every call), torch's varlen with cuDNN allowed (`varlen_cudnn`) and blocked
  (`varlen`), plus fa3/flash when installed: ms per call, first call apart.
- memory: peak memory of one training step of the base model (151,680 vocabulary), eager and
  compiled, at 32k and 64k tokens per micro-batch, and the same with activation checkpointing at 64k.

--dry-run runs the same code on the CPU at toy sizes, so that the script is known to work before
GPU time is spent on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def lengths_for(tokens: int, max_len: int, g: torch.Generator) -> list[int]:
    out, left = [], tokens
    while left > 0:
        n = min(left, int(torch.randint(16, max_len + 1, (1,), generator=g)))
        out.append(n)
        left -= n
    return out


def attention_timing(dry: bool) -> dict:
    from twbert.training.attention import attention, available_backends

    device = "cpu" if dry else "cuda"
    dtype = torch.float32 if dry else torch.bfloat16
    tokens, max_len, calls = (512, 128, 3) if dry else (65536, 1024, 30)
    backends = ["sdpa"] if dry else [b for b in available_backends("cuda") if b != "sdpa"]
    out = {}
    for backend in backends:
        g = torch.Generator().manual_seed(0)
        times = []
        for _ in range(calls):
            lengths = lengths_for(tokens, max_len, g)  # a new geometry every call
            cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32).to(device)
            qkv = torch.randn(tokens, 3, 12, 64, device=device, dtype=dtype, requires_grad=True)
            q, k, v = qkv.unbind(1)  # the model's strided views
            if not dry:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            attention(q, k, v, cu, max(lengths), (-1, -1), backend).sum().backward()
            if not dry:
                torch.cuda.synchronize()
            times.append(1000 * (time.perf_counter() - t0))
        out[backend] = {"first_ms": round(times[0], 3), "median_ms": round(sorted(times[1:])[len(times) // 2 - 1], 3),
                        "calls": calls, "tokens": tokens}
    return out


def step_memory(dry: bool) -> dict:
    from twbert.training.model import EncoderConfig, EncoderForMLM
    from twbert.training.prefetch import device_batch

    device = torch.device("cpu" if dry else "cuda")
    if dry:
        config = EncoderConfig(vocab_size=512, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                               intermediate_size=96, attn_backend="sdpa")
        sizes, max_len = [512, 1024], 128
    else:
        config = EncoderConfig()  # ModernBERT-base, 151,680 vocabulary
        sizes, max_len = [32768, 65536], 1024
    results = []
    torch.manual_seed(0)
    m = EncoderForMLM(config).to(device)  # one model, so that the compiled runs share one compilation
    # the dry run traces the same graphs but generates no C++ (inductor's CPU codegen takes minutes here)
    compiled_m = torch.compile(m, dynamic=True, backend="aot_eager" if dry else "inductor")
    cases = [(False, t, False) for t in sizes] + [(False, sizes[-1], True)] + [(True, t, False) for t in sizes]
    for compiled, tokens, recompute in cases:
        m.model.checkpoint_layers = recompute
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=not dry)
        run = compiled_m if compiled else m
        g = torch.Generator().manual_seed(1)
        row = {"tokens": tokens, "compiled": compiled, "activation_checkpointing": recompute}
        try:
            for _step in range(2):  # the second step has the optimizer state
                lengths = lengths_for(tokens, max_len, g)
                ids = torch.randint(5, config.vocab_size, (tokens,), generator=g)
                pos = torch.randperm(tokens, generator=g)[: int(0.3 * tokens)].sort().values
                cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32)
                b = device_batch({"input_ids": ids, "position_ids": torch.cat([torch.arange(n) for n in lengths]),
                                  "cu_seqlens": cu, "max_seqlen": max(lengths), "num_tokens": tokens,
                                  "masked_positions": pos, "masked_targets": ids[pos], "num_masked": len(pos)})
                if not dry:
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not dry):
                    loss = run(**b.inputs(device))["loss"]
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if not dry:
                    torch.cuda.synchronize()
            row.update(step_s=round(time.perf_counter() - t0, 3), loss=float(loss))
            if not dry:
                row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
                row["reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
        except torch.cuda.OutOfMemoryError:
            row["error"] = "out of memory"
        print(json.dumps(row), flush=True)
        results.append(row)
        del opt
        if not dry:
            torch.cuda.empty_cache()
    return {"results": results}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("what", choices=("attention", "memory"))
    p.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: check the script, measure nothing")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    args.out.mkdir(parents=True, exist_ok=True)
    result = attention_timing(args.dry_run) if args.what == "attention" else step_memory(args.dry_run)
    result["device"] = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name()
    (args.out / f"{args.what}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

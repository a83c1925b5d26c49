"""Training throughput of twbert's unpadded encoder vs transformers' ModernBERT, same GPU, same run.

    python benchmarks/bench_encoder_gpu.py                 # base size, seq 1024, bf16, one GPU
    python benchmarks/bench_encoder_gpu.py --compile       # also torch.compile both models
    python benchmarks/bench_encoder_gpu.py --tiny --device cpu   # smoke test of the logic on CPU

Every configuration trains the same synthetic packed documents (seeded) for `--steps` optimiser steps
after `--warmup` steps: forward with 30% of tokens masked, backward, fused AdamW, bf16 autocast over
fp32 weights. Every step gets a batch of its own (new document lengths, so new token and sequence
counts and max_seqlen): per-shape caches (cuDNN graphs, compiled graphs) cannot hide their cost
behind a few recycled batches. It prints, per configuration, real (non-padding) tokens/s, MFU and
peak memory, and the ratio of each to transformers' ModernBertForMaskedLM with its best attention.

- twbert/<backend>: the packed batch as the loader yields it (no padding), the head on the masked
  rows with the chunked decoder + loss, as `twbert train` runs it. `sdpa` is the reference backend,
  which pads every document to max_seqlen inside attention only: the padded-SDPA comparison.
  `varlen` keeps global layers on FlashAttention, `varlen_cudnn` lets torch route them to cuDNN.
- hf/<attn>: ModernBertForMaskedLM, one document per row padded to the longest, with
  attention_mask; `sdpa`, `flex_attention` where the installed transformers supports it, and
  `flash_attention_2` when the flash-attn package is importable (it unpads inside the model). Every
  HF configuration runs its encoder, then its own head and decoder on the masked rows only, with
  the cross-entropy HF's sparse_prediction path uses: the same FLOPs as twbert's.
- Compilation is fair: without --compile neither side is compiled (HF's `reference_compile`, which
  compiles parts of ModernBERT by default, is switched off); with --compile both whole models are
  torch.compile'd (dynamic shapes), again with reference_compile off.

MFU uses the same model FLOPs for every configuration (twbert's num_flops_per_token at the batch's
effective contexts, attention_context: sum(L^2)/sum(L) on global layers, sum(L min(L, window+1))/sum(L)
on local ones, real tokens only, sparse head), so padding shows up as lower MFU; against the peak
dense bf16 FLOP/s of the GPU by its name (training/hardware.py: H100 SXM/PCIe/NVL, H200, A100,
L40S, ...; --peak-tflops overrides).

Needs only torch and transformers, plus this repository (on PYTHONPATH or not: it finds training/
next to this file), so it runs on the lent GPU machine without the data-pipeline dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import math
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# transformers attention implementations tried by default: flash_attention_2 is HF ModernBERT's
# fastest (unpadded) path, but needs the flash-attn package
HF_ATTN = ["sdpa", "flex_attention"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])


def import_model():
    """twbert.training.model, installed or straight from the checkout."""
    try:
        from twbert.training import model
    except ImportError:
        sys.path.insert(0, str(ROOT))
        import twbert

        pkg = types.ModuleType("twbert.training")
        pkg.__path__ = [str(ROOT / "training")]
        sys.modules["twbert.training"] = twbert.training = pkg
        from twbert.training import model
    return model


def loader_format(batch):
    """The loader's extra keys (masked rows as indices), so prefetch.device_batch pads it as in training."""
    from twbert.training.masking import IGNORE

    pos = (batch["labels"] != IGNORE).nonzero().squeeze(1)
    return {**batch, "masked_positions": pos, "masked_targets": batch["labels"][pos], "num_masked": len(pos),
            "num_tokens": len(batch["input_ids"])}


def make_batches(n, seq_len, batch_tokens, vocab, seed, full_share=0.5, min_len=32):
    """`n` micro-batches of exactly `batch_tokens` tokens: documents of which `full_share` fill
    `seq_len` and the rest are uniform in [min_len, seq_len], [CLS] ... [SEP]; 30% of tokens masked."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        lengths, total = [], 0
        while total < batch_tokens:
            full = torch.rand(1, generator=g).item() < full_share
            n_tok = seq_len if full else int(torch.randint(min_len, seq_len + 1, (1,), generator=g))
            n_tok = min(n_tok, batch_tokens - total)
            if n_tok < 2:
                lengths[-1] += n_tok
                total += n_tok
                continue
            lengths.append(n_tok)
            total += n_tok
        ids = torch.randint(10, vocab, (batch_tokens,), generator=g)
        cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        cu[1:] = torch.tensor(lengths).cumsum(0)
        ids[cu[:-1].long()] = 2  # [CLS]
        ids[(cu[1:] - 1).long()] = 3  # [SEP]
        masked = torch.rand(batch_tokens, generator=g) < 0.3
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        inputs = torch.where(masked, torch.full_like(ids, 4), ids)
        batches.append({
            "input_ids": inputs,
            "labels": labels,
            "position_ids": torch.cat([torch.arange(x) for x in lengths]),
            "cu_seqlens": cu,
            "max_seqlen": max(lengths),
            "lengths": lengths,
        })
    return batches


def padded(batch):
    """One document per row, padded to the longest, as transformers' SDPA/flex path needs."""
    lengths = batch["lengths"]
    rows, width = len(lengths), max(lengths)
    ids = torch.zeros(rows, width, dtype=torch.long)
    labels = torch.full((rows, width), -100, dtype=torch.long)
    attn = torch.zeros(rows, width, dtype=torch.long)
    for r, (s, n) in enumerate(zip(batch["cu_seqlens"][:-1].tolist(), lengths)):
        ids[r, :n] = batch["input_ids"][s:s + n]
        labels[r, :n] = batch["labels"][s:s + n]
        attn[r, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": attn}


def to(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def run_config(name, model, step_fn, batches, flops, args, device):
    """Train `steps` steps after `warmup`; return the figures for this configuration."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses = []
    start = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            sync()
            start = time.perf_counter()
        batch = to(batches[step], device)
        with autocast:
            loss = step_fn(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    sync()
    elapsed = time.perf_counter() - start
    tokens = sum(batches[s]["n_tokens"] for s in range(args.warmup, args.warmup + args.steps))
    total_flops = sum(flops[s] for s in range(args.warmup, args.warmup + args.steps))
    peak = peak_flops(device, args.peak_tflops)
    result = {
        "config": name,
        "tokens_per_s": tokens / elapsed,
        "step_ms": 1000 * elapsed / args.steps,
        "tflops": total_flops / elapsed / 1e12,
        "mfu": total_flops / elapsed / peak if peak else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "first_loss": float(losses[0]),  # same weights and batch: twbert and HF should agree (bf16)
        "final_loss": float(losses[-1]),
    }
    if not math.isfinite(result["final_loss"]):
        raise RuntimeError(f"{name}: loss is {result['final_loss']}")
    del opt
    return result


def peak_flops(device, override):
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    import_model()
    from twbert.training.hardware import peak_tflops_of

    tf = peak_tflops_of(torch.cuda.get_device_name(device))
    return tf * 1e12 if tf else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (cpu only with --tiny)")
    p.add_argument("--tiny", action="store_true", help="2-layer, 64-wide model and short batches: a smoke test")
    p.add_argument("--seq-len", type=int, default=1024, help="longest document (the phase-1 max_len)")
    p.add_argument("--batch-tokens", type=int, default=32768, help="tokens per micro-batch (32 x 1024)")
    p.add_argument("--vocab", type=int, default=151680, help="vocabulary size (Qwen's padded to a multiple of 64)")
    p.add_argument("--steps", type=int, default=20, help="timed optimiser steps per configuration")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation, autotuning)")
    p.add_argument("--compile", action="store_true", help="torch.compile every model (dynamic shapes)")
    p.add_argument("--backends", nargs="+", default=["fa3", "flash", "varlen", "varlen_cudnn", "sdpa"],
                   help="twbert attention backends to run (those not available are reported and skipped)")
    p.add_argument("--hf-attn", nargs="+", default=HF_ATTN,
                   help="transformers attn_implementation values to run (unsupported ones are skipped); "
                   "none to skip transformers")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="run in fp32 instead of bf16 autocast")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak dense TFLOP/s for MFU")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic documents and the weights")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_encoder_gpu: no CUDA device here. This benchmark measures GPU training throughput; run it "
              "on a GPU machine (see docs/model.md), or smoke-test its logic with --tiny --device cpu.",
              file=sys.stderr)
        return 0
    if device.type != "cuda" and not args.tiny:
        print("bench_encoder_gpu: CPU figures at base size would take hours and mean nothing; "
              "use --tiny with --device cpu.", file=sys.stderr)
        return 2
    if args.tiny:
        args.seq_len, args.batch_tokens, args.vocab = min(args.seq_len, 128), min(args.batch_tokens, 1024), 1024
        args.steps, args.warmup = min(args.steps, 3), min(args.warmup, 1)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    mdl = import_model()
    import transformers

    if args.tiny:
        config = mdl.EncoderConfig(vocab_size=args.vocab, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                   intermediate_size=96, local_attention=16, max_position_embeddings=args.seq_len,
                                   pad_token_id=0, cls_token_id=2, sep_token_id=3, mask_token_id=4)
    else:
        config = mdl.EncoderConfig(vocab_size=args.vocab, pad_token_id=0, cls_token_id=2, sep_token_id=3,
                                   mask_token_id=4)
    batches = make_batches(args.warmup + args.steps, args.seq_len, args.batch_tokens, args.vocab, args.seed)
    torch.manual_seed(args.seed)
    ref = mdl.EncoderForMLM(config)
    flops = []
    for b in batches:
        ctx, local_ctx = ref.attention_context(b["lengths"])  # the window caps each document
        n_masked = int((b["labels"] != -100).sum())
        flops.append(ref.num_flops_per_token(ctx, n_masked / args.batch_tokens, local_ctx) * args.batch_tokens)
        b["n_tokens"] = args.batch_tokens
    mean_len = args.batch_tokens / sum(len(b["lengths"]) for b in batches) * len(batches)
    header = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "params": ref.num_parameters(), "layers": config.num_hidden_layers, "hidden": config.hidden_size,
        "vocab": config.vocab_size, "seq_len": args.seq_len, "batch_tokens": args.batch_tokens,
        "mean_doc_len": round(mean_len, 1), "bf16": args.bf16, "compile": args.compile,
    }
    print(json.dumps(header))
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    del ref

    from twbert.training.prefetch import device_batch

    def twbert_step(model, b):
        return model(**{k: v for k, v in b.items() if k != "n_tokens"})["loss"]

    class HFSparse(torch.nn.Module):
        """HF's encoder, then its own head and decoder on the masked rows only, with the loss of its
        sparse_prediction path: the FLOPs twbert spends. (HF's flash_attention_2 cannot run its own
        sparse path with labels: it re-pads masked-only logits with every token's indices.) One module,
        so that --compile compiles encoder and head together, as it does twbert's."""

        def __init__(self, mlm):
            super().__init__()
            self.mlm = mlm

        def forward(self, input_ids, attention_mask, labels, masked_rows):
            hidden = self.mlm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, masked_rows)
            logits = self.mlm.decoder(self.mlm.head(rows))
            return torch.nn.functional.cross_entropy(logits.float(), labels.reshape(-1).index_select(0, masked_rows))

    def hf_step(model, b):
        return model(b["input_ids"], b["attention_mask"], b["labels"], b["masked_rows"])

    from twbert.training.attention import available_backends

    results = []
    usable = available_backends(device)
    for backend in args.backends:
        name = f"twbert/{backend}"
        if backend not in usable:
            print(f"{name}: skipped (not available on {device}; usable: {', '.join(usable)})")
            continue
        torch.manual_seed(args.seed)
        model = mdl.EncoderForMLM(mdl.EncoderConfig(**{**config.to_dict(), "attn_backend": backend}))
        model.load_state_dict(state)
        model.to(device).train()
        run_model = torch.compile(model, dynamic=True) if args.compile else model
        host = []
        for b in batches:
            d = device_batch(loader_format(b), pin=device.type == "cuda")
            host.append({"max_seqlen": d.max_seqlen, **d.tensors, "n_tokens": b["n_tokens"]})
        results.append(measure(name, run_model, twbert_step, host, flops, args, device))
        del model, run_model, host
        cleanup(device)

    for impl in args.hf_attn:
        if impl == "none":
            continue
        name = f"hf/{impl}"
        hf_config = transformers.ModernBertConfig(**config.to_hf_config())
        hf_config.reference_compile = False  # compiled as a whole with --compile, as twbert is
        try:
            model = transformers.AutoModelForMaskedLM.from_config(hf_config, attn_implementation=impl)
        except (ValueError, ImportError) as e:
            print(f"{name}: skipped ({str(e).splitlines()[0][:160]})")
            continue
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"decoder.weight"}:
            print(f"{name}: skipped (weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]})")
            continue
        model = HFSparse(model).to(device).train()
        run_model = torch.compile(model, dynamic=True) if args.compile else model
        host = []
        for b in batches:
            pb = padded(b)
            pb["masked_rows"] = (pb["labels"].view(-1) != -100).nonzero().squeeze(1)
            pb["n_tokens"] = b["n_tokens"]
            host.append(pb)
        results.append(measure(name, run_model, hf_step, host, flops, args, device))
        del model, run_model, host
        cleanup(device)

    ok = [r for r in results if "error" not in r]
    hf = [r for r in ok if r["config"].startswith("hf/")]
    best_hf = max(hf, key=lambda r: r["tokens_per_s"]) if hf else None
    print(f"\n{'config':<20}{'tokens/s':>12}{'step ms':>10}{'TFLOP/s':>10}{'MFU':>8}{'peak GiB':>10}"
          f"{'vs best HF':>12}{'loss@0':>9}")
    for r in results:
        if "error" in r:
            print(f"{r['config']:<20}  {r['error']}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        ratio = r["tokens_per_s"] / best_hf["tokens_per_s"] if best_hf else None
        r["speedup_vs_best_hf"] = ratio
        print(f"{r['config']:<20}{r['tokens_per_s']:>12,.0f}{r['step_ms']:>10.1f}{r['tflops']:>10.1f}{mfu:>8}"
              f"{mem:>10}{(f'{ratio:.2f}x' if ratio else '-'):>12}{r['first_loss']:>9.4f}")
    if best_hf:
        print(f"(best transformers configuration: {best_hf['config']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"setup": header, "results": results}, indent=1))
    return 0 if ok else 1


def measure(name, model, step_fn, batches, flops, args, device):
    try:
        return run_config(name, model, step_fn, batches, flops, args, device)
    except torch.cuda.OutOfMemoryError:
        return {"config": name, "error": "out of memory"}
    except Exception as e:  # a failing configuration is reported; the others still run
        return {"config": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}


def cleanup(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())

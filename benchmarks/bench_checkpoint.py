"""What a checkpoint costs the train loop at base size (22 x 768, Qwen-sized 151,680 vocabulary).

Builds the model and AdamW state on CPU, then times twbert's atomic checkpoint (temp dir, fsync,
sha256 manifest, rename) against a plain `torch.save` of the same state to one file, and the load
with verification (sha256 of every file + torch.load(weights_only=True)) against a plain load.

    python benchmarks/bench_checkpoint.py [--dir /tmp/ckpt-bench] [--vocab 151680]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from twbert.training import checkpoint as ckpt
from twbert.training.model import EncoderConfig, EncoderForMLM
from twbert.training.trainer import build_optimizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    ap.add_argument("--vocab", type=int, default=151680, help="vocabulary size (padded)")
    a = ap.parse_args()
    root = Path(a.dir or tempfile.mkdtemp(prefix="ckpt-bench-"))
    root.mkdir(parents=True, exist_ok=True)

    model = EncoderForMLM(EncoderConfig(vocab_size=a.vocab))
    opt = build_optimizer(model, {"lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-5,
                                  "no_decay": ["norm", "bias", "embeddings"], "fused": None}, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # materialise the moments
    state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    n = sum(p.numel() for p in model.parameters())

    t = time.perf_counter()
    path = ckpt.save(root / "checkpoints", 1, tensors=state, jsons={"trainer": {"step": 1}})
    t_save = time.perf_counter() - t
    size = sum(f.stat().st_size for f in path.iterdir())
    t = time.perf_counter()
    torch.save(state, root / "plain.pt")
    t_plain = time.perf_counter() - t

    t = time.perf_counter()
    assert ckpt.verify(path) is None
    ckpt.load_tensors(path, "model"), ckpt.load_tensors(path, "optimizer")
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    torch.load(root / "plain.pt", weights_only=True)
    t_plain_load = time.perf_counter() - t

    print(f"model {n / 1e6:.1f}M parameters, checkpoint {size / 1e9:.2f} GB at {root}")
    print(f"save:  twbert atomic {t_save:.2f} s ({size / t_save / 1e9:.2f} GB/s)  plain torch.save {t_plain:.2f} s"
          f"  ratio {t_save / t_plain:.2f}x")
    print(f"load:  verified {t_load:.2f} s  plain torch.load {t_plain_load:.2f} s  ratio {t_load / t_plain_load:.2f}x")
    if not a.dir:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

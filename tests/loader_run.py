"""Fixtures for the loader tests (real MDS shards, a real tokenizer dir) and the process they launch.

As a script: build an MLMLoader, optionally load a state, take N batches, save the state after K of
them, and write the batches' hashes (and the token accounting) as JSON. Under WORLD_SIZE > 1 it
joins a gloo process group first, as the trainer does under torchrun.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = 1000


def write_tokenizer(out: Path) -> Path:
    """A real tokenizers dir: word-level vocab t5..t999, BERT specials at 0..4."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {t: i for i, t in enumerate(SPECIALS)} | {f"t{i}": i for i in range(len(SPECIALS), VOCAB)}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.add_special_tokens(SPECIALS)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    return out


def make_chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(len(SPECIALS), VOCAB, size=n).astype(np.uint32)
    word_len = rng.integers(1, 5, size=n)
    words = np.repeat(np.arange(n), word_len)[:n].astype(np.int32)
    return ids, words


def write_shards(root: Path, sizes: dict[str, int], seed: int = 0, max_tokens: int = 2000,
                 word_ids: bool = True) -> dict[str, int]:
    """One MDS dataset per `name: number of chunks`, in the shards contract's columns; returns tokens per name."""
    from streaming import MDSWriter

    rng = np.random.default_rng(seed)
    columns = {"input_ids": "ndarray:uint32", "word_ids": "ndarray:int32", "doc_id": "str",
               "chunk_index": "int", "source": "str", "tier": "str", "weight": "float32"}
    if not word_ids:
        del columns["word_ids"]
    tokens = {}
    for name, count in sizes.items():
        source, tier = name.split("-", 1)
        total = 0
        with MDSWriter(out=str(root / name), columns=columns, compression="zstd", hashes=["xxh64"],
                       size_limit=1 << 16) as w:
            for i in range(count):
                # mostly short chunks, some long ones that the loader must cut
                n = int(rng.integers(1, 120)) if rng.random() < 0.7 else int(rng.integers(120, max_tokens))
                ids, words = make_chunk(rng, n)
                row = {"input_ids": ids, "doc_id": f"{name}/{i // 3}", "chunk_index": i % 3,
                       "source": source, "tier": tier, "weight": np.float32(1.0)}
                if word_ids:
                    row["word_ids"] = words
                w.write(row)
                total += n
        tokens[name] = total
    write_tokenizer(root / "tokenizer")
    return tokens


def batch_hash(b: dict) -> str:
    h = hashlib.sha256()
    for k in ("input_ids", "labels", "position_ids", "cu_seqlens"):
        h.update(k.encode())
        h.update(b[k].numpy().tobytes())
    h.update(f"{b['max_seqlen']},{b['num_tokens']}".encode())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cfg", default="{}", help="data config as JSON")
    ap.add_argument("--n", type=int, required=True, help="batches to take")
    ap.add_argument("--save-at", type=int, default=None, help="save the state after this many batches")
    ap.add_argument("--state-out", default=None)
    ap.add_argument("--state-in", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--total-steps", type=int, default=None)
    a = ap.parse_args()

    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    from twbert.training.loader import MLMLoader

    loader = MLMLoader(json.loads(a.cfg), a.data, seed=7, total_steps=a.total_steps)
    if a.state_in:
        loader.load_state_dict(json.loads(Path(a.state_in).read_text()))
    cls, sep = loader.tokenizer_info["cls"], loader.tokenizer_info["sep"]
    hashes, content, rates = [], 0, []
    for i in range(a.n):
        if a.save_at is not None and i == a.save_at:
            Path(a.state_out).write_text(json.dumps(loader.state_dict()))
        loader.set_step(loader.batches)  # one micro-batch per step here
        b = next(loader)
        hashes.append(batch_hash(b))
        rates.append(loader.mask_rate)
        ids, unmasked = b["input_ids"], b["labels"] == -100
        content += b["num_tokens"] - int((((ids == cls) | (ids == sep)) & unmasked).sum())
    if a.save_at is not None and a.save_at == a.n:
        Path(a.state_out).write_text(json.dumps(loader.state_dict()))
    from twbert.training.packing import part_from_json

    st = loader.state_dict()
    buffered = sum(len(part_from_json(p)[0]) for seq in st["packer"]["seqs"] for p in seq)
    buffered += sum(len(part_from_json(p)[0]) for p in st["concat"]["open"])
    Path(a.out).write_text(json.dumps({"hashes": hashes, "rates": rates, "content_tokens": content,
                                       "buffered_tokens": buffered, "stats": loader.stats()}))
    loader.close()
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

"""Cost of verifying shards before reading them (`twbert.shards.format.verify_dataset`), one core.

Writes one MDS sub-dataset with streaming's MDSWriter as the shards stage does (zstd, xxh64, 64 MiB
shards) from synthetic token chunks (Zipf-distributed ids, so they compress like text tokens), then
measures, in CPU seconds of this process:

- verify, compressed shards only (as `twbert build` leaves them): one xxh64 pass over the .mds.zstd files;
- verify, with the decompressed copies streaming leaves next to them after a first `twbert train`;
- for scale: decompressing every shard once (what streaming does on the first read anyway).

    python benchmarks/bench_verify.py --tokens 50_000_000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def write(out: Path, tokens: int, seed: int = 0) -> int:
    from streaming import MDSWriter

    from twbert.shards.format import COLUMNS, HASH

    rng = np.random.default_rng(seed)
    n = 0
    with MDSWriter(out=str(out), columns=COLUMNS, compression="zstd", hashes=[HASH], size_limit=1 << 26) as w:
        i = 0
        while n < tokens:
            k = int(rng.integers(64, 8190))
            ids = np.minimum(rng.zipf(1.3, size=k), 150_000).astype(np.uint32)
            w.write({"input_ids": ids, "word_ids": (np.arange(k) // 2).astype(np.int32), "doc_id": f"d{i}",
                     "chunk_index": 0, "source": "web", "tier": "tw", "weight": np.float32(1.0)})
            n += k
            i += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=50_000_000)
    args = ap.parse_args()
    from streaming.base.compression import decompress

    from twbert.shards.format import read_index, verify_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "web-tw"
        n = write(ds, args.tokens)
        zipped = sum(p.stat().st_size for p in ds.glob("*.zstd"))
        t = time.process_time()
        verify_dataset(ds)
        t_zip = time.process_time() - t
        t = time.process_time()
        for s in read_index(ds)["shards"]:
            (ds / s["raw_data"]["basename"]).write_bytes(decompress("zstd", (ds / s["zip_data"]["basename"]).read_bytes()))
        t_dec = time.process_time() - t
        raw = sum(p.stat().st_size for p in ds.glob("*.mds"))
        t = time.process_time()
        verify_dataset(ds)
        t_raw = time.process_time() - t
    print(f"{n:,} tokens: {zipped / 2**20:,.1f} MiB compressed, {raw / 2**20:,.1f} MiB decompressed")
    print(f"verify, compressed only:     {t_zip:6.2f} s CPU ({zipped / 2**20 / max(t_zip, 1e-9):,.0f} MiB/s)")
    print(f"verify, decompressed copies: {t_raw:6.2f} s CPU ({raw / 2**20 / max(t_raw, 1e-9):,.0f} MiB/s)")
    print(f"decompress every shard once: {t_dec:6.2f} s CPU (streaming does this on the first read)")


if __name__ == "__main__":
    main()

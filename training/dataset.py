"""The streaming side of the loader: shard sub-datasets mixed by weight, and chunks cut to `max_len`.

`DIR/shards/` holds one MDS dataset per source x tier (`wiki-tw`, `web-tw_converted`, ...). Each
becomes one `streaming.Stream`; its weight (from `data.weights`, else `data.tier_weights`, else the weight the build's variant
policy recorded in shards/meta.json) sets how
often it is sampled, which is where Taiwan-form text is favoured at training time. The data dir may
be a local path or a remote URL (s3://, gs://, oci://, hf://...); remote shards are cached locally.

Shards are chunked once, at the long phase's length. `cut` splits a chunk into balanced pieces
for a shorter phase, at word boundaries where it can (`packing.Concatenator` optionally joins
pieces of consecutive samples, [SEP] between them, so that short documents fill long sequences).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
from streaming import Stream, StreamingDataset

from twbert.errors import UsageError
from twbert.shards import format as shards_format

MIXING = ("repeat", "proportion")


def is_remote(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def stream_weights(names: list[str], cfg: dict, built: dict[str, float] | None = None) -> dict[str, float]:
    """Weight of each sub-dataset: `weights[name]`, else `tier_weights[tier]` (tier = after the first
    '-'), else the weight the build recorded for it (`built`), else 1."""
    weights, tiers, built = cfg["weights"] or {}, cfg["tier_weights"] or {}, built or {}
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise UsageError(f"data.weights names sub-datasets that are not in the shards: {unknown}; "
                         f"there are: {names}")
    out = {}
    for name in names:
        tier = name.split("-", 1)[1] if "-" in name else name
        # Shards without a recorded weight (written before the variant policy, or by hand) count as 1.
        w = weights.get(name, tiers.get(tier, built.get(name, 1.0)))
        if float(w) < 0:
            raise UsageError(f"data weight of {name!r} must be >= 0, got {w}")
        if float(w) > 0:
            out[name] = float(w)
    if not out:
        raise UsageError("every sub-dataset has weight 0: nothing to train on")
    return out


def cache_root(data_dir: str, cfg: dict) -> Path:
    if cfg["cache_dir"]:
        return Path(cfg["cache_dir"]).expanduser()
    tag = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path("~/.cache/twbert/shards").expanduser() / tag


def build_streams(data_dir: str, cfg: dict) -> list[Stream]:
    """One Stream per weighted sub-dataset. Remote data dirs need the names in data.weights."""
    remote = is_remote(data_dir)
    if remote:
        names = sorted(cfg["weights"] or {})
        if not names:
            raise UsageError(f"{data_dir} is remote: name its sub-datasets and their weights in data.weights")
    else:
        names = shards_format.dataset_names(data_dir)
    weights = stream_weights(names, cfg, None if remote else shards_format.built_weights(data_dir))
    mixing = cfg["mixing"]
    if mixing not in MIXING:
        raise UsageError(f"data.mixing must be one of {MIXING}, got {mixing!r}")
    total = sum(weights.values())
    streams = []
    for name, w in weights.items():
        # streaming checks what it downloads or decompresses (validate_hash); shard files already on
        # disk, decompressed copies included, it trusts: those are verified here, once per file.
        kw = {"repeat": w} if mixing == "repeat" else {"proportion": w / total}
        kw["validate_hash"] = shards_format.HASH
        if remote:
            local = cache_root(data_dir, cfg) / name
            if (local / shards_format.INDEX_FILE).is_file():
                shards_format.verify_dataset(local, missing_ok=True)
            kw |= {"remote": f"{str(data_dir).rstrip('/')}/{name}", "local": str(local)}
        else:
            shards_format.verify_dataset(Path(data_dir) / name)
            kw |= {"local": str(Path(data_dir) / name)}
        streams.append(Stream(**kw))
    return streams


class SampleDataset(StreamingDataset):
    """StreamingDataset yielding only what the loader needs, plus the sample's global index.

    The index (stable for a given set of shards) keys the masking generator.
    """

    def get_item(self, sample_id: int, retry: int = 7):
        s = super().get_item(sample_id, retry)
        return {"input_ids": s["input_ids"], "word_ids": s.get("word_ids"), "sample_id": int(sample_id)}


def build_dataset(data_dir: str, cfg: dict, seed: int) -> SampleDataset:
    return SampleDataset(
        streams=build_streams(data_dir, cfg),
        batch_size=int(cfg["read_batch"]),
        shuffle=bool(cfg["shuffle"]),
        shuffle_seed=int(seed if cfg["shuffle_seed"] is None else cfg["shuffle_seed"]),
        shuffle_algo=cfg["shuffle_algo"],
        shuffle_block_size=cfg["shuffle_block_size"],
        num_canonical_nodes=cfg["num_canonical_nodes"],
        predownload=cfg["predownload"],
        cache_limit=cfg["cache_limit"],
        download_timeout=float(cfg["download_timeout"]),
    )


def collate(samples: list[dict]) -> dict[str, list]:
    """Keep samples as numpy arrays (no tensors: the packer works in numpy)."""
    return {"sample_id": [s["sample_id"] for s in samples],
            "input_ids": [s["input_ids"] for s in samples],
            "word_ids": [s["word_ids"] for s in samples]}


def cut(ids: np.ndarray, words: np.ndarray | None, limit: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Split a chunk into near-equal pieces of at most `limit` tokens: ceil(len / limit) of them, or
    one more where moving cuts back to word starts needs it.

    Cuts move back to the start of a word when that keeps at least half the piece; word ids of each
    piece restart at 0. Balanced pieces pack better than a full piece and a short tail.
    """
    n = len(ids)
    if n <= limit:
        return [(ids, words)]
    word_starts = None if words is None else np.flatnonzero(np.diff(words) != 0) + 1
    pieces, s = [], 0
    while n - s > limit:
        left = math.ceil((n - s) / limit)
        e = s + math.ceil((n - s) / left)
        if word_starts is not None:
            j = int(np.searchsorted(word_starts, e, side="right")) - 1
            if j >= 0 and word_starts[j] - s >= (e - s) // 2:
                e = int(word_starts[j])
        pieces.append((ids[s:e], None if words is None else words[s:e] - words[s]))
        s = e
    pieces.append((ids[s:], None if words is None else words[s:] - words[s]))
    return pieces


def fetch_tokenizer(data_dir: str, cfg: dict) -> Path:
    """The tokenizer dir next to the shards; downloaded into the cache when the shards are remote."""
    if not is_remote(data_dir):
        return shards_format.tokenizer_dir(data_dir)
    from streaming.base.storage import download_file

    local = cache_root(data_dir, cfg) / shards_format.TOKENIZER_DIR
    for name in ("tokenizer.json", shards_format.TOKENIZER_INFO):
        dest = local / name
        if not dest.is_file():
            try:
                download_file(f"{str(data_dir).rstrip('/')}/{shards_format.TOKENIZER_DIR}/{name}", str(dest), float(cfg["download_timeout"]))
            except Exception as e:  # twbert_tokenizer.json is optional
                if name == "tokenizer.json":
                    raise UsageError(f"could not fetch {data_dir}/tokenizer/{name}: {e}") from None
    return local


def clean_stale_shm() -> list[str]:
    """Free shared memory left by streaming jobs that died; all ranks call it, local rank 0 cleans.

    On Linux a segment is stale when no process maps it (live datasets keep theirs mapped), so a
    running job on the same machine is left alone; all of /dev/shm is swept, not only up to the first
    free prefix as streaming's `clean_stale_shared_memory` does (prefixes whose lock files remain in the
    temp dir are skipped, so leftovers past such a gap survive it). Elsewhere: streaming's function.
    """
    import re

    import torch.distributed as dist
    from streaming.base.constant import SHM_TO_CLEAN

    shm, removed = Path("/dev/shm"), []
    if not (shm.is_dir() and Path("/proc/self/maps").is_file()):
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        return removed
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        pattern = re.compile(r"\d{{6}}_({})".format("|".join(map(re.escape, SHM_TO_CLEAN))))
        candidates = [e for e in shm.iterdir() if pattern.fullmatch(e.name)]
        if candidates:
            mapped = _mapped_shm()
            for entry in candidates:
                if entry.name not in mapped:
                    try:
                        entry.unlink()
                        removed.append(entry.name)
                    except OSError:  # another user's, or gone already
                        pass
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    return removed


def _mapped_shm() -> set[str]:
    """Names of /dev/shm segments some process maps.

    Processes we may not inspect are other users' (or init): their segments are not ours to unlink
    anyway (/dev/shm is sticky), so they are passed over.
    """
    names = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            text = (proc / "maps").read_text()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        for line in text.splitlines():
            i = line.find("/dev/shm/")
            if i >= 0:
                names.add(line[i + 9:].split(" (deleted)")[0])
    return names

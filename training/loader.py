"""MLMLoader: MDS shards in, packed and masked unpadded micro-batches out, resumable exactly.

    streaming (mixed sub-datasets, seeded shuffle, rank/worker partition)
      -> read batches of `read_batch` samples (DataLoader workers decode shards)
      -> cut to max_len (dataset.cut), optionally concatenate (packing.Concatenator)
      -> best-fit packer buffer (packing.Packer) -> masked at emission (masking.Masker)

Resume: `state_dict()` is this rank's position as one JSON-serialisable dict: streaming's loader
state (how many samples this rank has read; streaming skips them on resume without reading them),
the packer's buffer and open concatenation (samples read but not yet emitted), the epoch, and the
masking step and rate. Masks depend only on (seed, epoch, sample id, piece) and the rate, so a fresh
process that loads the state yields byte-identical batches.

Ranks read in lockstep: a rank reads one more batch of samples exactly when some rank needs one
(a one-int all-reduce on a gloo group). Streaming needs this: its resume point and its epoch barrier
assume every rank has read the same number of samples, while packing consumes a data-dependent number.
"""

from __future__ import annotations

import os
from pathlib import Path

from twbert.errors import UsageError
from twbert.shards.format import read_tokenizer_info
from twbert.training.dataset import build_dataset, clean_stale_shm, collate, cut, fetch_tokenizer
from twbert.training.masking import build_masker, rate_schedule
from twbert.training.packing import Concatenator, Packer

FORMAT = "twbert-loader/1"
# settings that must not change across a resume: they decide what the saved position means
RESUME_KEYS = ("max_len", "tokens_per_batch", "read_batch", "concat", "pack_buffer", "shuffle",
               "shuffle_seed", "shuffle_algo", "weights", "tier_weights", "mixing")


def data_config(cfg: dict | None) -> dict:
    """`cfg` (a train config's `data:` section, possibly partial) over the documented defaults."""
    from twbert.config import defaults, merge, schema

    return merge(defaults("train")["data"], cfg or {}, "data config", "data", schema("train").fields["data"])


class MLMLoader:
    """Iterate for micro-batches (never ends: epochs follow one another).

    cfg: the `data:` section of the train config (missing keys take the defaults).
    data_dir: the shards/ directory (local path or remote URL).
    tokenizer: its tokenizer dir, or a dict from `shards.format.read_tokenizer_info`; default data_dir/tokenizer.
    seed: masking seed, and shuffle seed unless data.shuffle_seed is set.
    rank, world_size: default from the RANK / WORLD_SIZE environment (torchrun sets them).
    total_steps: optimiser steps of the run, for a masking schedule given as a fraction of training.
    """

    def __init__(self, cfg: dict | None, data_dir: str | Path, tokenizer=None, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, total_steps: int | None = None):
        self.cfg = cfg = data_config(cfg)
        self.data_dir = str(data_dir)
        self.seed = int(seed)
        env_rank, env_world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.rank = env_rank if rank is None else int(rank)
        self.world_size = env_world if world_size is None else int(world_size)
        if (self.rank, self.world_size) != (env_rank, env_world):
            raise UsageError(f"rank {self.rank}/{self.world_size} differs from the environment's RANK/WORLD_SIZE "
                             f"({env_rank}/{env_world}), which streaming partitions by: launch with torchrun")
        self.max_len, self.tokens_per_batch = int(cfg["max_len"]), int(cfg["tokens_per_batch"])
        if self.max_len < 3:
            raise UsageError(f"data.max_len must be >= 3 ([CLS] token [SEP]), got {self.max_len}")
        if self.tokens_per_batch < self.max_len:
            raise UsageError(f"data.tokens_per_batch ({self.tokens_per_batch}) must be >= data.max_len "
                             f"({self.max_len}) so that a longest sequence fits a micro-batch")
        if isinstance(tokenizer, dict):
            self.tokenizer_info = dict(tokenizer)
        else:
            self.tokenizer_info = read_tokenizer_info(tokenizer or fetch_tokenizer(self.data_dir, cfg))
        tok = self.tokenizer_info
        try:
            self.masker = build_masker(tok, cfg["masking"], seed=self.seed)
            self._rate_at = rate_schedule(cfg["masking"], total_steps)
        except ValueError as e:
            raise UsageError(str(e)) from None
        self.step, self.mask_rate = 0, self._rate_at(0)
        self.packer = Packer(self.tokens_per_batch, tok["cls"], tok["sep"])
        self.concat = Concatenator(self.max_len - 2, cfg["concat"])
        self._buffer_target = int(cfg["pack_buffer"]) * self.tokens_per_batch
        self.epoch = self.batches = self.samples_read = self.tokens_read = self.tokens_emitted = 0
        self._stream_state = None
        self._it = None
        self._group = self._lockstep_group()
        if cfg["clean_stale_shm"]:
            clean_stale_shm()  # before our own dataset exists: it would free its memory too
        self._build()

    # -- construction ------------------------------------------------------------------------
    def _lockstep_group(self):
        if self.world_size == 1:
            return None
        import torch.distributed as dist

        if not dist.is_initialized():
            raise UsageError(f"WORLD_SIZE={self.world_size}: initialise torch.distributed (as torchrun + "
                             f"the trainer do) before building the loader: ranks read in lockstep")
        # a group of its own: the trainer reads batches in a background thread, and collectives of
        # two threads on one group could pair up differently on different ranks
        return dist.new_group(backend="gloo")

    def _build(self) -> None:
        from streaming import StreamingDataLoader

        cfg = self.cfg
        for attempt in range(5):
            try:
                self.dataset = build_dataset(self.data_dir, cfg, self.seed)
                break
            except FileExistsError:
                # another streaming job on this machine took the same shared-memory prefix between
                # streaming's check and its create; one rank can simply look again (several ranks
                # are inside streaming's barriers: there it stays an error)
                if self.world_size > 1 or attempt == 4:
                    raise
                import random
                import time

                time.sleep(0.05 + random.random() * 0.2)
        workers = int(cfg["num_workers"])
        self._dl = StreamingDataLoader(
            self.dataset, batch_size=int(cfg["read_batch"]), num_workers=workers, collate_fn=collate,
            prefetch_factor=int(cfg["prefetch_factor"]) if workers else None, drop_last=False)

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self) -> dict:
        self._fill()
        batch = self.packer.pop(self._mask)
        self.batches += 1
        self.tokens_emitted += batch["num_tokens"]
        return batch

    def _mask(self, ids, words, parts, keys):
        return self.masker.mask_flat(ids, words, parts, keys, self.mask_rate)

    def _fill(self) -> None:
        while True:
            need = self.packer.tokens < self._buffer_target
            if self.world_size > 1:
                need = self._any_rank(need)
            if not need:
                return
            self._read()

    def _any_rank(self, flag: bool) -> bool:
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self._group)
        return bool(t.item())

    def _read(self) -> None:
        """Read one batch of samples into the packer, starting the next epoch when one ends."""
        for _attempt in range(3):
            if self._it is None:
                self._it = iter(self._dl)
            try:
                batch = next(self._it)
                break
            except StopIteration:  # epoch over (or resumed at its very end)
                self._it = None
                self.epoch += 1
        else:
            raise UsageError(f"{self.data_dir}: the weighted sub-datasets yielded no samples in a whole epoch")
        limit = self.max_len - 2
        for sid, ids, words in zip(batch["sample_id"], batch["input_ids"], batch["word_ids"]):
            if words is not None and len(words) != len(ids):
                raise ValueError(f"{self.data_dir}: sample {sid} has {len(ids)} input_ids but {len(words)} word_ids")
            for k, (p_ids, p_words) in enumerate(cut(ids, words, limit)):
                for seq in self.concat.add((p_ids, p_words, (self.epoch, sid, k))):
                    self.packer.add(seq)
            self.samples_read += 1
            self.tokens_read += len(ids)

    # -- masking schedule --------------------------------------------------------------------
    def set_step(self, step: int) -> None:
        """Set the optimiser step; the masking rate follows data.masking's schedule."""
        self.step = int(step)
        self.mask_rate = self._rate_at(self.step)

    # -- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """This rank's position now, cheaply (buffers by reference): a prefetching trainer takes one
        after each step's batches and serialises the one of its last finished step (`state_dict`)."""
        return {
            "streaming": self._dl.state_dict() if self._it is not None else self._stream_state,
            **{k: getattr(self, k) for k in ("epoch", "batches", "samples_read", "tokens_read", "tokens_emitted",
                                              "step", "mask_rate")},
            "concat": list(self.concat.open),
            "packer": self.packer.snapshot(),
        }

    def state_dict(self, snapshot: dict | None = None) -> dict:
        """This rank's position (now, or at `snapshot`), JSON-serialisable. Save one per rank (they
        differ in buffers)."""
        snap = self.snapshot() if snapshot is None else snapshot
        return {
            "format": FORMAT,
            "rank": self.rank,
            "world_size": self.world_size,
            "settings": {k: self.cfg[k] for k in RESUME_KEYS},
            **{k: v for k, v in snap.items() if k not in ("concat", "packer")},
            "concat": self.concat.state_dict(snap["concat"]),
            "packer": self.packer.state_dict(snap["packer"]),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state` (from `state_dict()` of the same rank). Call before the first batch."""
        if self._it is not None or self.batches:
            raise RuntimeError("load_state_dict must be called before the loader yields its first batch: "
                               "streaming applies a resume state only to a dataset not yet iterated")
        if state.get("format") != FORMAT:
            raise UsageError(f"loader state has format {state.get('format')!r}, expected {FORMAT!r}")
        if state["world_size"] != self.world_size or state["rank"] != self.rank:
            raise UsageError(f"loader state of rank {state['rank']}/{state['world_size']} loaded on rank "
                             f"{self.rank}/{self.world_size}: resume with the same number of ranks")
        now = {k: self.cfg[k] for k in RESUME_KEYS}
        changed = {k: (state["settings"][k], now[k]) for k in RESUME_KEYS if state["settings"].get(k) != now[k]}
        if changed:
            raise UsageError("data settings changed since the checkpoint (saved -> now): "
                             + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
                             + "; restore them to resume, or start a new phase with init_from")
        self._stream_state = state["streaming"]
        if self._stream_state is not None:
            self._dl.load_state_dict(self._stream_state)
        for k in ("epoch", "batches", "samples_read", "tokens_read", "tokens_emitted", "step"):
            setattr(self, k, int(state[k]))
        self.mask_rate = float(state["mask_rate"])
        self.concat.load_state_dict(state["concat"])
        self.packer.load_state_dict(state["packer"])

    # -- bookkeeping -------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counters for logging: fill is emitted tokens / (batches x tokens_per_batch)."""
        return {"epoch": self.epoch, "batches": self.batches, "samples_read": self.samples_read,
                "tokens_read": self.tokens_read, "tokens_emitted": self.tokens_emitted,
                "buffered_tokens": self.packer.tokens, "mask_rate": self.mask_rate,
                "fill": self.tokens_emitted / max(self.batches * self.tokens_per_batch, 1)}

    def close(self) -> None:
        """Stop workers and release streaming's shared memory (also happens at exit)."""
        it, self._it = self._it, None
        if it is not None:
            it.close()
        inner = getattr(self.dataset, "_iterator", None)
        if inner is not None:  # streaming's download threads (0 workers: they run in this process)
            inner.exit()
        del self._dl, self.dataset

"""The next optimiser steps' micro-batches, packed in a background thread while the device computes.

    batches = Prefetcher(loader, accum, start_step, device, flops_of)
    step_batches = batches.next()   # accum DeviceBatch, the loader snapshot after them, the mask rate
    ...
    loader.state_dict(step_batches.snapshot)   # the position after this step, for its checkpoint

The thread runs up to `depth` steps ahead of the trainer, so the loader itself is ahead of the step
being computed: each step carries the loader's snapshot after its own batches, and a checkpoint
saves that one, so resume stays exact. Masking rates are a function of the step, so the thread sets
the loader's step itself.

A DeviceBatch holds the model's inputs in pinned host memory (on CUDA) and moves them with
non-blocking copies; everything the trainer needs to know about a batch (token, masked and FLOP
counts, max_seqlen) is a Python number, so the hot loop never reads a device tensor. Two paddings
keep torch.compile on one graph as batches vary (docs/training.md): cu_seqlens gets an empty last
sequence (a batch of one sequence would otherwise specialise a size of 1), and the masked rows are
padded to a multiple of MASK_BUCKET with ignored targets (a count of 0 or 1 would specialise too).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import torch

MASK_BUCKET = 64


@dataclass
class DeviceBatch:
    tensors: dict  # input_ids, position_ids, cu_seqlens, masked_positions, masked_targets (host)
    max_seqlen: int
    num_tokens: int
    num_masked: int
    flops: float

    def inputs(self, device: torch.device) -> dict:
        """The model's keyword arguments on `device` (copies queued, not waited for)."""
        return {"max_seqlen": self.max_seqlen,
                **{k: t.to(device, non_blocking=True) for k, t in self.tensors.items()}}


def device_batch(batch: dict, pin: bool = False, flops: float = 0.0) -> DeviceBatch:
    """A loader batch (training/packing.py) as the model's padded inputs."""
    n = batch["num_masked"]
    rows = max(MASK_BUCKET, -(-n // MASK_BUCKET) * MASK_BUCKET)
    positions = torch.zeros(rows, dtype=torch.long)
    positions[:n] = batch["masked_positions"]
    targets = torch.full((rows,), -100, dtype=torch.long)
    targets[:n] = batch["masked_targets"]
    cu = batch["cu_seqlens"]
    tensors = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"],
               "cu_seqlens": torch.cat([cu, cu[-1:]]), "masked_positions": positions, "masked_targets": targets}
    if pin:
        tensors = {k: t.pin_memory() for k, t in tensors.items()}
    return DeviceBatch(tensors, int(batch["max_seqlen"]), int(batch["num_tokens"]), n, flops)


@dataclass
class StepBatches:
    step: int
    batches: list[DeviceBatch]
    snapshot: dict  # loader.snapshot() after these batches
    mask_rate: float
    epoch: int = field(default=0)


class Prefetcher:
    def __init__(self, loader, accum: int, start_step: int, device: torch.device, flops_of=None, depth: int = 2):
        self.loader, self.accum, self.step = loader, accum, start_step
        self.pin = device.type == "cuda"
        self.flops_of = flops_of or (lambda batch: 0.0)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twbert-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        step = self.step
        try:
            while not self._stop.is_set():
                self.loader.set_step(step)  # the masking-rate schedule
                batches = []
                for _ in range(self.accum):
                    b = next(self.loader)
                    batches.append(device_batch(b, self.pin, self.flops_of(b)))
                item = StepBatches(step, batches, self.loader.snapshot(), self.loader.mask_rate, self.loader.epoch)
                self._put(item)
                step += 1
        except BaseException as e:  # handed to the trainer, which raises it
            self._put(e)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> StepBatches:
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        """Stop the thread (after the batch it is packing); the loader may then be closed."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()

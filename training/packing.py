"""Best-fit packing of sequences into flat, unpadded micro-batches (docs/architecture.md, batches).

A sequence is one or more parts (content tokens of a sample piece), laid out as
`[CLS] part [SEP]` or, when pieces are concatenated, `[CLS] part [SEP] part [SEP]`. Each micro-batch
first takes the oldest buffered sequence (so none waits forever), then repeatedly the longest one that
still fits in `tokens_per_batch`, oldest first among equals. Sequences never share a token: the model
keeps them apart with `cu_seqlens`.

The buffer is the packer's whole state; `state_dict()` stores it as JSON (token arrays base64-coded).
"""

from __future__ import annotations

import base64
import bisect
from collections import deque
from collections.abc import Callable

import numpy as np
import torch

from twbert.training.masking import IGNORE

# ids (uint32), word ids (int32 or None), masking key (epoch, sample id, piece index)
Part = tuple[np.ndarray, "np.ndarray | None", tuple[int, int, int]]
# mask(input_ids, word numbers (-1: not maskable), part index per token, part keys) -> (input_ids, labels)
MaskFn = Callable[[np.ndarray, np.ndarray, np.ndarray, list], tuple[np.ndarray, np.ndarray]]


def seq_tokens(parts: list[Part]) -> int:
    """Tokens a sequence takes in a batch: its parts, a [SEP] between parts, and [CLS] ... [SEP]."""
    return sum(len(p[0]) for p in parts) + len(parts) + 1


def _b64(a: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _unb64(s: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)


def part_to_json(p: Part) -> dict:
    return {"ids": _b64(p[0], np.uint32), "words": None if p[1] is None else _b64(p[1], np.int32),
            "key": [int(k) for k in p[2]]}


def part_from_json(d: dict) -> Part:
    return (_unb64(d["ids"], np.uint32), None if d["words"] is None else _unb64(d["words"], np.int32),
            tuple(d["key"]))


class Packer:
    def __init__(self, tokens_per_batch: int, cls_id: int, sep_id: int):
        self.capacity = int(tokens_per_batch)
        self.cls_id, self.sep_id = int(cls_id), int(sep_id)
        self._seqs: dict[int, list[Part]] = {}  # arrival number -> parts
        self._by_size: list[tuple[int, int]] = []  # sorted (tokens, arrival)
        self._arrivals: deque[int] = deque()
        self._next = 0
        self.tokens = 0  # buffered tokens, specials included

    def __len__(self) -> int:
        return len(self._seqs)

    def add(self, parts: list[Part]) -> None:
        size = seq_tokens(parts)
        if size > self.capacity:
            raise ValueError(f"a sequence of {size} tokens cannot fit tokens_per_batch={self.capacity}")
        a = self._next
        self._next += 1
        self._seqs[a] = parts
        bisect.insort(self._by_size, (size, a))
        self._arrivals.append(a)
        self.tokens += size

    def _take(self, index: int) -> tuple[int, list[Part]]:
        size, a = self._by_size.pop(index)
        self.tokens -= size
        return size, self._seqs.pop(a)

    def pop(self, mask: MaskFn) -> dict:
        """The next micro-batch, masked by `mask` (see MaskFn; Masker.mask_flat does it)."""
        if not self._seqs:
            raise IndexError("the packer is empty")
        while self._arrivals[0] not in self._seqs:
            self._arrivals.popleft()
        oldest = self._arrivals.popleft()
        size = seq_tokens(self._seqs[oldest])
        chosen = [self._take(bisect.bisect_left(self._by_size, (size, oldest)))]
        room = self.capacity - size
        while self._by_size:
            i = bisect.bisect_right(self._by_size, (room, float("inf"))) - 1
            if i < 0:
                break
            i = bisect.bisect_left(self._by_size, (self._by_size[i][0], -1))  # oldest of that size
            chosen.append(self._take(i))
            room -= chosen[-1][0]
        return self._assemble(chosen, mask)

    def _assemble(self, chosen: list[tuple[int, list[Part]]], mask: MaskFn) -> dict:
        lens = np.fromiter((s for s, _ in chosen), dtype=np.int64, count=len(chosen))
        cu = np.zeros(len(chosen) + 1, dtype=np.int32)
        np.cumsum(lens, out=cu[1:])
        total = int(cu[-1])
        # the separators ([SEP] after every part, [CLS] first) fill every gap the parts leave
        input_ids = np.full(total, self.sep_id, dtype=np.int64)
        input_ids[cu[:-1]] = self.cls_id
        words = np.full(total, -1, dtype=np.int64)  # -1: never masked
        part_of = np.full(total, -1, dtype=np.int64)
        keys, word_base = [], 0
        for (_, parts), start in zip(chosen, cu[:-1].tolist()):
            p = start + 1
            for ids, w, key in parts:
                n = len(ids)
                input_ids[p:p + n] = ids
                # word numbers unique across the batch: a part's own, shifted past the previous part's
                words[p:p + n] = np.arange(word_base, word_base + n) if w is None else w + word_base
                part_of[p:p + n] = len(keys)
                keys.append(key)
                word_base += n
                p += n + 1
        input_ids, labels = mask(input_ids, words, part_of, keys)
        position_ids = np.arange(total, dtype=np.int64) - np.repeat(cu[:-1].astype(np.int64), lens)
        masked = np.flatnonzero(labels != IGNORE)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "labels": torch.from_numpy(labels),
            # the masked tokens as indices: the model gathers them without a GPU sync (nonzero)
            "masked_positions": torch.from_numpy(masked),
            "masked_targets": torch.from_numpy(labels[masked]),
            "position_ids": torch.from_numpy(position_ids),
            "cu_seqlens": torch.from_numpy(cu),
            "max_seqlen": int(lens.max()),
            "num_tokens": total,
            "num_masked": len(masked),
        }

    def snapshot(self) -> list[list[Part]]:
        """The buffer, oldest first, by reference (a buffered sequence is never changed): cheap to take
        every step; `state_dict(snapshot)` serialises it when a checkpoint needs it."""
        return [self._seqs[a] for a in sorted(self._seqs)]

    def state_dict(self, snapshot: list[list[Part]] | None = None) -> dict:
        """The buffer, oldest first (arrival order is all that decides what comes out next)."""
        seqs = self.snapshot() if snapshot is None else snapshot
        return {"seqs": [[part_to_json(p) for p in parts] for parts in seqs]}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(self.capacity, self.cls_id, self.sep_id)
        for parts in state["seqs"]:
            self.add([part_from_json(p) for p in parts])


class Concatenator:
    """Joins consecutive parts into sequences of up to `limit` content tokens ([SEP] between parts).

    With `enabled=False` every part is its own sequence. The open sequence is part of the state.
    """

    def __init__(self, limit: int, enabled: bool):
        self.limit, self.enabled = int(limit), bool(enabled)
        self.open: list[Part] = []
        self._size = 0

    def add(self, part: Part) -> list[list[Part]]:
        if not self.enabled:
            return [[part]]
        done = []
        n = len(part[0])
        if self.open and self._size + 1 + n > self.limit:
            done.append(self.open)
            self.open, self._size = [], 0
        self._size += n + (1 if self.open else 0)
        self.open.append(part)
        if self._size >= self.limit - 1:  # nothing more fits after a [SEP]
            done.append(self.open)
            self.open, self._size = [], 0
        return done

    def state_dict(self, snapshot: list[Part] | None = None) -> dict:
        return {"open": [part_to_json(p) for p in (self.open if snapshot is None else snapshot)]}

    def load_state_dict(self, state: dict) -> None:
        self.open = [part_from_json(p) for p in state["open"]]
        self._size = sum(len(p[0]) for p in self.open) + max(len(self.open) - 1, 0)

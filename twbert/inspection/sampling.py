"""A seeded reservoir sample: the same stream and random generator always keep the same items."""

from __future__ import annotations

import random


class Reservoir:
    """Up to `k` items of a stream, uniformly (Algorithm R), kept in stream order."""

    def __init__(self, k: int, rng: random.Random):
        self.k, self.rng = k, rng
        self.seen = 0
        self._kept: list[tuple[int, object]] = []

    def add(self, item) -> None:
        i = self.seen
        self.seen += 1
        if len(self._kept) < self.k:
            self._kept.append((i, item))
        elif self.k:
            j = self.rng.randrange(i + 1)
            if j < self.k:
                self._kept[j] = (i, item)

    def items(self) -> list:
        return [item for _, item in sorted(self._kept, key=lambda x: x[0])]

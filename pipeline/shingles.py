"""Character n-gram shingles for Chinese near-duplicate detection.

datatrove's MinHash word-tokenises `cmn_Hani` with spaCy+jieba (26–55 docs/s per core). Chinese has
no spaces to cut on and a segmenter adds nothing a character n-gram does not already see, so twbert
shingles characters:

1. NFKC (full-width Latin/digits and compatibility forms become their plain forms);
2. fold the script with OpenCC `t2s`, so that a Simplified copy of a Traditional text (or the reverse)
   shingles the same; lower-case;
3. keep letters and digits only: punctuation, symbols, whitespace and control characters go, so
   re-punctuated or re-flowed copies collide;
4. hash every run of `n` consecutive code points to 64 bits, vectorised in numpy (a polynomial over
   the code points, then the murmur3 finaliser to spread the bits).

A text shorter than `n` characters (after normalisation) is one shingle, so short exact copies still
collide; an empty one has no shingles.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

_P = np.uint64(0x100000001B3)  # FNV prime: odd, so the polynomial keeps all the bits of each code point
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


@lru_cache(maxsize=1)
def _keep_table() -> np.ndarray:
    """keep[cp] is True for code points in Unicode categories L* and N* (letters, digits)."""
    keep = np.zeros(0x110000, dtype=bool)
    for cp in range(0x110000):
        c = unicodedata.category(chr(cp))
        if c[0] in "LN":
            keep[cp] = True
    return keep


def fmix64(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, in place on a uint64 array (wrap-around arithmetic)."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


class Shingler:
    """Normalise Chinese text and turn it into hashed character n-grams.

    Args:
        n: characters per shingle.
        fold: OpenCC config that folds the script before shingling (`t2s`, or `tw2sp` to also fold
            Taiwan/mainland vocabulary such as 軟體/软件), or None to keep the script.
    """

    def __init__(self, n: int = 5, fold: str | None = "t2s"):
        if n < 1:
            raise ValueError(f"shingle size must be >= 1, got {n}")
        self.n = int(n)
        self.fold = fold
        self._converter = None

    # OpenCC converters are C++ objects: build one per process, never pickle it (datatrove ships
    # pipeline steps to worker processes by pickling them).
    def __getstate__(self):
        return {"n": self.n, "fold": self.fold, "_converter": None}

    @property
    def converter(self):
        if self._converter is None and self.fold:
            import opencc

            self._converter = opencc.OpenCC(self.fold)
        return self._converter

    def normalize(self, text: str) -> str:
        """The text as shingled: NFKC, script folded, lower-cased, letters and digits only."""
        return self.codepoints(text).tobytes().decode("utf-32-le")

    def codepoints(self, text: str) -> np.ndarray:
        text = unicodedata.normalize("NFKC", text)
        if self.converter is not None:
            text = self.converter.convert(text)
        cps = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
        return cps[_keep_table()[cps]]

    def shingles(self, text: str) -> np.ndarray:
        """uint64 hashes of the character n-grams of `text` (1-D, one per n-gram, in order)."""
        cps = self.codepoints(text).astype(np.uint64)
        n = min(self.n, len(cps))
        if n == 0:
            return np.empty(0, dtype=np.uint64)
        count = len(cps) - n + 1
        h = cps[:count].copy()
        for k in range(1, n):
            h *= _P
            h += cps[k : k + count]
        # The n-gram length goes into the hash so a short text never collides with an n-gram.
        h += np.uint64(n)
        return fmix64(h)

"""Word segmentation for whole-word masking, with a Taiwan-form dictionary, mapped onto tokens.

The masker needs to know which tokens form one word. We segment each document with a jieba-family
segmenter and give every token the index of the word its first character lies in (`word_ids`), so a
token spanning two words belongs to the first.

Backends (benchmark in docs/shards.md): `rjieba` (jieba-rs, Rust; the default: fastest), `jieba_fast_dat`
(C++), and `jieba` (pure Python; the reference implementation, always installed).

Dictionary: jieba's `dict.txt` is Simplified and its `dict.txt.big` ships in no PyPI package, so
`dictionary: tw` derives a Taiwan-form dictionary from the `dict.txt` jieba installs: every entry is
converted with OpenCC `s2tw` (characters) and `s2twp` (characters and Taiwan vocabulary: 隨身碟,
主機板), frequencies of colliding forms are summed, and the result is cached on disk (built in about
a second, byte-identical every time). `dictionary: jieba` uses the stock dictionary; a path uses that
file (jieba's `word freq [tag]` lines).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

BACKENDS = ("rjieba", "jieba_fast_dat", "jieba")
_DICT_FORMAT = 1  # bump when the derivation below changes, so stale caches are not reused


def cache_dir() -> Path:
    return Path(os.environ.get("TWBERT_CACHE") or Path.home() / ".cache" / "twbert")


def jieba_dict_path() -> Path:
    import jieba

    return Path(jieba.__file__).parent / "dict.txt"


def taiwan_dictionary(source: Path | None = None, out_dir: Path | None = None) -> Path:
    """Path to the Taiwan-form dictionary derived from jieba's `dict.txt` (built and cached on first use)."""
    source = Path(source or jieba_dict_path())
    raw = source.read_bytes()
    digest = hashlib.sha256(raw + f"v{_DICT_FORMAT}".encode()).hexdigest()[:16]
    out = Path(out_dir or cache_dir()) / f"jieba_tw.{digest}.txt"
    if out.is_file():
        return out
    import opencc

    entries = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"{source}:{n}: not a jieba dictionary line (word freq [tag]): {line!r}")
        entries.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""))
    words = "\n".join(w for w, _, _ in entries)
    # One call per converter over the whole list: OpenCC never matches across a newline.
    forms = [opencc.OpenCC(cfg).convert(words).split("\n") for cfg in ("s2tw", "s2twp")]
    freq: dict[str, int] = {}
    tag: dict[str, str] = {}
    for i, (_, f, t) in enumerate(entries):
        for w in {form[i] for form in forms}:
            if not w or any(c.isspace() for c in w):
                continue
            freq[w] = freq.get(w, 0) + f
            tag.setdefault(w, t)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for w in sorted(freq):
            fh.write(f"{w} {freq[w]} {tag[w]}\n" if tag[w] else f"{w} {freq[w]}\n")
    os.replace(tmp, out)  # atomic: tasks on other processes may build it at the same time
    return out


def _read_dict(path: Path):
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{n}: not a jieba dictionary line (word freq [tag]): {line.rstrip()!r}")
            yield parts[0], int(parts[1]), (parts[2] if len(parts) > 2 else None)


@functools.lru_cache(maxsize=4)
def _load(backend: str, path: str, size: int, mtime_ns: int):
    """The backend's segmenter loaded with the dictionary at `path`, once per process: loading the
    Taiwan-form dictionary (350k words) costs about a CPU second, and a worker process runs many tasks.
    Size and mtime are in the key, so a dictionary file changed on disk is loaded again."""
    if backend == "rjieba":
        import rjieba

        seg = rjieba.Jieba.empty()
        add = seg.add_word
        for w, f, t in _read_dict(Path(path)):
            add(w, f, t)
        return seg
    import importlib
    import logging

    module = importlib.import_module(backend)
    module.setLogLevel(logging.WARNING)  # not "Building prefix dict ..." once per task
    seg = module.Tokenizer(dictionary=path)
    seg.initialize()
    return seg


class Segmenter:
    """Cuts text into words; `word_starts` gives each word's first character offset.

    backend: rjieba | jieba_fast_dat | jieba. dictionary: "tw" (derived Taiwan-form, default),
    "jieba" (stock Simplified dict.txt) or a path to a jieba-format dictionary. hmm: let jieba's HMM
    join unknown words (names, new terms), as jieba does by default.
    """

    def __init__(self, backend: str = "rjieba", dictionary: str = "tw", hmm: bool = True):
        if backend not in BACKENDS:
            raise ValueError(f"segmenter backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.backend, self.hmm = backend, hmm
        if dictionary == "tw":
            path = taiwan_dictionary()
        elif dictionary == "jieba":
            path = jieba_dict_path()
        else:
            path = Path(dictionary)
            if not path.is_file():
                raise FileNotFoundError(f"segmenter dictionary not found: {path}")
        self.dictionary = path
        st = path.stat()
        seg = _load(backend, str(path), st.st_size, st.st_mtime_ns)
        if backend == "rjieba":
            self._cut = lambda text: seg.cut(text, self.hmm)
        else:
            self._cut = lambda text: seg.lcut(text, HMM=self.hmm)

    def cut(self, text: str) -> list[str]:
        return self._cut(text)

    def word_starts(self, text: str) -> np.ndarray:
        """Character offset where each word starts (int64, increasing, first is 0)."""
        words = self._cut(text)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        if int(lengths.sum()) != len(text):
            raise ValueError(f"{self.backend} segmentation does not cover the text ({lengths.sum()} of {len(text)} chars)")
        starts = np.zeros(len(words), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return starts


def token_word_ids(word_starts: np.ndarray, token_starts: np.ndarray, token_ends: np.ndarray) -> np.ndarray:
    """Each token's masking unit (int64, non-decreasing from 0): the word it starts.

    A token starts a new unit only where it begins exactly at a word start and shares no character
    with the token before. So a token that spans two words belongs to the first, and so do the
    rest of the second word's tokens: byte-level BPE can end a token inside a character (把程 | 程
    | 式), and a unit that began inside a character could never be masked whole.
    """
    n = len(token_starts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    at_word = np.zeros(n, dtype=bool)
    j = np.searchsorted(word_starts, token_starts)
    ok = j < len(word_starts)
    at_word[ok] = word_starts[j[ok]] == token_starts[ok]
    new = at_word
    new[1:] &= token_starts[1:] >= token_ends[:-1]
    new[0] = True
    return np.cumsum(new) - 1

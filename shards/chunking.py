"""Cut a tokenised document into chunks of at most `limit` tokens, at sentence boundaries.

`limit` is `max_len - 2`: the packer adds `[CLS]` and `[SEP]`. Shards are chunked once at the long
phase's length (8192); the loader cuts chunks again to the current phase's length, so one set of
shards serves both phases (docs/shards.md).

Sentences end after a run of 。！？；…!?; (with any closing quote or bracket that follows) and at
newlines. A token belongs to the sentence its first character lies in; a cut is only ever made
between two tokens that do not share a character (byte-level BPE can split one character across
two tokens), so every chunk decodes to an exact slice of the document.

Chunks are filled greedily with whole sentences. A single sentence longer than `limit` is cut at
token level as a last resort (at the last word boundary that fits, else the last clean token
boundary) and counted in `sentences_split`. A last chunk shorter than `min_tail` tokens is, by
`tail` policy: `merge`d with the chunk before (the two are re-cut at the sentence boundary that
balances them best, so neither exceeds `limit`; after a split sentence, at a word or clean token
boundary), `drop`ped (counted), or `keep`t.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

TAIL_POLICIES = ("merge", "drop", "keep")
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[」』”’）)\]】》〉\"']*\n*|\n+")


@dataclass
class ChunkStats:
    sentences_split: int = 0  # sentences longer than the limit, cut at token level
    tails_merged: int = 0  # short last chunks re-balanced with the chunk before
    tails_dropped: int = 0  # short last chunks dropped
    tokens_dropped: int = 0  # tokens in dropped tails


def sentence_starts(text: str) -> np.ndarray:
    """Character offsets where a sentence starts: 0, then just after every sentence end."""
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text)]
    return np.asarray(starts, dtype=np.int64)


def chunk(
    text: str,
    token_starts: np.ndarray,
    token_ends: np.ndarray,
    word_ids: np.ndarray,
    limit: int,
    min_tail: int = 0,
    tail: str = "merge",
    stats: ChunkStats | None = None,
) -> list[tuple[int, int]]:
    """Token ranges `[a, b)` covering the document (less a dropped tail), each at most `limit` long.

    token_starts/token_ends: character offsets of each token in `text`;
    word_ids: each token's word index (non-decreasing), to prefer word boundaries in a forced cut.
    """
    if limit < 1:
        raise ValueError(f"chunk limit must be at least 1 token, got {limit}")
    if tail not in TAIL_POLICIES:
        raise ValueError(f"tail policy must be one of {', '.join(TAIL_POLICIES)}, not {tail!r}")
    stats = stats if stats is not None else ChunkStats()
    n = len(token_starts)
    if n == 0:
        return []
    if n <= limit:
        return [(0, n)]
    starts = np.asarray(token_starts, dtype=np.int64)
    ends = np.asarray(token_ends, dtype=np.int64)
    # clean[i]: a cut before token i (1 <= i < n) leaves no character split between two chunks.
    clean = np.zeros(n, dtype=bool)
    clean[1:] = starts[1:] >= ends[:-1]
    sent = np.searchsorted(sentence_starts(text), starts, side="right")
    sentence_cut = np.flatnonzero(clean & np.r_[False, sent[1:] != sent[:-1]])
    word_cut = np.flatnonzero(clean & np.r_[False, word_ids[1:] != word_ids[:-1]])
    clean_cut = np.flatnonzero(clean)

    def last_at_most(cands: np.ndarray, lo: int, hi: int) -> int | None:
        """The largest candidate in (lo, hi], or None."""
        j = np.searchsorted(cands, hi, side="right") - 1
        return int(cands[j]) if j >= 0 and cands[j] > lo else None

    spans: list[tuple[int, int]] = []
    pos, last_split_sentence = 0, -1
    while n - pos > limit:
        cut = last_at_most(sentence_cut, pos, pos + limit)
        if cut is None:  # the sentence at `pos` alone is longer than the limit
            if sent[pos] != last_split_sentence:
                stats.sentences_split += 1
                last_split_sentence = sent[pos]
            cut = last_at_most(word_cut, pos + limit // 2, pos + limit)
            cut = cut or last_at_most(clean_cut, pos, pos + limit) or pos + limit
        spans.append((pos, cut))
        pos = cut
    spans.append((pos, n))

    a, b = spans[-1]
    if len(spans) > 1 and b - a < min_tail and tail != "keep":
        if tail == "drop":
            spans.pop()
            stats.tails_dropped += 1
            stats.tokens_dropped += b - a
        else:
            # Re-cut [p, n) in two at the boundary nearest its middle that keeps both halves <= limit:
            # a sentence boundary; where the tail was left by a split sentence (no sentence is kept
            # whole there anyway), a word boundary, else a clean token boundary.
            p, best = spans[-2][0], a
            for cands in (sentence_cut, word_cut, clean_cut):
                options = np.append(cands[(cands > p) & (cands < n)], a)
                options = options[(options - p <= limit) & (n - options <= limit)]
                best = int(options[np.argmin(np.abs(options - (p + n) / 2))])
                if best != a or a in sentence_cut:
                    break
            if best != a:
                spans[-2:] = [(p, best), (best, n)]
                stats.tails_merged += 1
    return spans

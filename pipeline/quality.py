"""FineWeb2's `cmn_Hani` quality filters, measured on characters instead of spaCy+jieba words.

FineWeb2 (huggingface/fineweb-2, `fineweb-2-pipeline.py` step 5 and `configs/cmn_Hani.yml`) filters
each language with three datatrove filters, in this order, with these `cmn_Hani` settings:

| check | FineWeb2 setting | source |
| --- | --- | --- |
| language score ≥ | 0.692 | `cmn_Hani.yml: language_score` (pipeline step 3) |
| GopherRepetition dup_line_frac | 0.287 | `cmn_Hani.yml` |
| GopherRepetition dup_para_frac, dup_line_char_frac, dup_para_char_frac | 0 (off) | pipeline script |
| GopherRepetition top_n_grams | (2, 0.256) (3, 0.201) (4, 0.171) | `cmn_Hani.yml` |
| GopherRepetition dup_n_grams | (5, 0.198) (6, 0.182) (7, 0.167) (8, 0.154) (9, 0.14) (10, 0.127) | `cmn_Hani.yml` |
| FineWebQuality line_punct_thr | 0.106 | `cmn_Hani.yml` |
| FineWebQuality short_line_thr | 999 (off) | pipeline script |
| FineWebQuality char_duplicates_ratio | 0.1 | pipeline script ("changed from 0.01 in fineweb english") |
| FineWebQuality new_line_ratio | 0.178 | `cmn_Hani.yml` |
| GopherQuality min/max_doc_words | 50 / 100000 | datatrove defaults (not overridden) |
| GopherQuality min/max_avg_word_length | 1 / 5 | `cmn_Hani.yml` |
| GopherQuality max_symbol_word_ratio, bullets, end ellipsis | 0.1 / 0.9 / 0.3 | datatrove defaults |
| GopherQuality max_non_alpha_words_ratio | 0.735 | `cmn_Hani.yml` |
| GopherQuality stop words, min_stop_words | 22 one-character words (的 年 在 月 是 …), 2 | `cmn_Hani.yml`, pipeline script |

FineWeb2 counted words with spaCy's jieba segmenter (26–55 docs/s per core). Here every non-space
character is a unit and word counts are *word equivalents*: characters / `chars_per_word`, where
`chars_per_word` = 1.7 is jieba's mean token length (punctuation included) measured on Taiwan
Wikipedia text (DRCD). Word n-grams of n words become character n-grams of round(n × 1.7)
characters, so a threshold keeps its meaning ("share of the text covered by repeated ~n-word
spans"). The average-word-length check is meaningless on characters and is left out. Stop words
are counted as distinct characters present, as the cmn_Hani list is all single characters.
Every drop reason keeps datatrove's name (`dup_line_frac`, `top_2_gram`, `duplicated_5_n_grams`,
`line_punct_ratio`, `char_dup_ratio`, `list_ratio`, `gopher_short_doc`, …).

Only web documents are filtered; wiki documents pass through.
"""

from __future__ import annotations

import re

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.text import TERMINAL_PUNCTUATION

CMN_HANI_STOPWORDS = ("的", "年", "在", "月", "是", "和", "日", "了", "於", "·", "為", "有", "被", "人", "中", "为", "他", "與", "後", "也", "而", "由")

_PARA = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_NON_LETTER = re.compile(r"[\W\d_]+")  # what is left are letters: Han, kana, Latin ... (str.isalpha)


class _Grams:
    """Character n-gram statistics of one text, vectorised. An n-gram is keyed by its code points packed
    into 64 bits (exact up to 3 characters) or, longer, by a 64-bit polynomial hash of them (a false
    match needs a 2^-64 coincidence)."""

    _P = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, text: str):
        self.codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        self._poly: tuple[int, np.ndarray] | None = None  # the last polynomial keys, extended to longer n

    def keys(self, n: int) -> np.ndarray:
        c, m = self.codes, len(self.codes) - n + 1
        if n <= 3:
            h = c[:m].copy()
            for j in range(1, n):
                h = (h << np.uint64(21)) | c[j : j + m]
            return h
        # The filter asks for increasing n: the keys of n are those of n - 1 times P plus one more code
        # point (the same wrapping arithmetic, so the same values), one pass instead of n - 1.
        if self._poly is not None and self._poly[0] <= n:
            k, h = self._poly
            h = h[: len(c) - k + 1]
        else:
            k, h = 1, c[: len(c)].copy()
        for j in range(k, n):
            h = h[:-1] * self._P + c[j:]
        self._poly = (n, h)
        return h

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram (datatrove's find_top_duplicate)."""
        if len(self.codes) < n:
            return 0
        s = np.sort(self.keys(n))
        ends = np.flatnonzero(s[1:] != s[:-1])  # the last index of every run of equal keys but the last
        if not len(ends):
            return n * len(s)
        longest = max(int(ends[0]) + 1, len(s) - 1 - int(ends[-1]), int(np.diff(ends).max(initial=0)))
        return n * longest

    def dup_chars(self, n: int) -> int:
        """Characters in n-grams already seen, jumping past each repeat (datatrove's find_all_duplicate)."""
        if len(self.codes) < n:
            return 0
        keys = self.keys(n)
        s = np.sort(keys)
        if (s[1:] != s[:-1]).all():
            return 0  # the common case: nothing repeats
        # np.unique(keys, return_index=True, return_inverse=True), with one (unstable, faster) argsort:
        # an n-gram's first position is the smallest index in its run.
        order = np.argsort(keys)
        s = keys[order]
        new = np.empty(len(s), dtype=bool)
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        inverse = np.empty(len(keys), dtype=np.intp)
        inverse[order] = np.cumsum(new) - 1
        first = np.minimum.reduceat(order, np.flatnonzero(new))
        # Only positions whose n-gram occurred before can be repeats; walk those in order. A first
        # occurrence is in `seen` unless a jump skipped it; a later occurrence is, if it was added.
        skipped = np.zeros(len(inverse), dtype=bool)
        added = set()
        repeated = nxt = 0
        for pos in np.flatnonzero(first[inverse] < np.arange(len(inverse))).tolist():
            if pos < nxt:
                continue
            g = int(inverse[pos])
            if g in added or not skipped[first[g]]:
                repeated += n
                skipped[pos + 1 : pos + n] = True
                nxt = pos + n
            else:
                added.add(g)
                nxt = pos + 1
        return repeated


def _duplicates(items: list[str]) -> tuple[int, int]:
    seen = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


class ChineseQualityFilter(BaseFilter):
    """FineWeb2 cmn_Hani quality thresholds on character measures (module docstring). Web docs only."""

    name = "🏅 Chinese quality (FineWeb2 cmn_Hani)"

    def __init__(
        self,
        language_score: float | None = 0.692,
        dup_line_frac: float | None = 0.287,
        top_n_grams: tuple = ((2, 0.256), (3, 0.201), (4, 0.171)),
        dup_n_grams: tuple = ((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127)),
        line_punct_thr: float | None = 0.106,
        char_duplicates_ratio: float | None = 0.1,
        new_line_ratio: float | None = 0.178,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100000,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        max_non_alpha_words_ratio: float | None = 0.735,
        stop_words: tuple = CMN_HANI_STOPWORDS,
        min_stop_words: int | None = 2,
        chars_per_word: float = 1.7,
        exclusion_writer=None,
    ):
        super().__init__(exclusion_writer)
        self.language_score = language_score
        self.dup_line_frac = dup_line_frac
        self.top_n_grams = [(n, max(1, round(n * chars_per_word)), t) for n, t in top_n_grams]
        self.dup_n_grams = [(n, max(1, round(n * chars_per_word)), t) for n, t in dup_n_grams]
        self.line_punct_thr = line_punct_thr
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.max_non_alpha_words_ratio = max_non_alpha_words_ratio
        self.stop_words = frozenset(stop_words)
        # Counted as characters present (module docstring): a longer stop word can never match.
        self._stop_chars = tuple(sorted(w for w in self.stop_words if len(w) == 1))
        self.min_stop_words = min_stop_words
        self.chars_per_word = chars_per_word
        self.stops = tuple(TERMINAL_PUNCTUATION)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("source") != "web":
            return True
        text = doc.text
        score = doc.metadata.get("language_score")
        if self.language_score is not None and score is not None and score < self.language_score:
            return False, "language_score"
        compact = "".join(text.split())  # = re.sub(r"\s+", "", text): both split on str.isspace
        if not compact:
            return False, "empty"
        n_chars = len(compact)
        words = n_chars / self.chars_per_word

        # GopherRepetitionFilter, as FineWeb2 configured it.
        lines = _LINES.split(text.strip())
        if self.dup_line_frac and _duplicates(lines)[0] / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        grams = _Grams(compact)
        for n, k, frac in self.top_n_grams:
            if grams.top_chars(k) / n_chars > frac:
                return False, f"top_{n}_gram"
        for n, k, frac in self.dup_n_grams:
            repeated = grams.dup_chars(k)
            if repeated / n_chars > frac:
                return False, f"duplicated_{n}_n_grams"
            if not repeated and k <= self.dup_n_grams[-1][1]:
                break  # no repeated k-gram means no repeated longer one either

        # FineWebQualityFilter.
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if self.line_punct_thr is not None:
            ratio = sum(1 for ln in lines if ln.rstrip().endswith(self.stops)) / len(lines)
            if ratio < self.line_punct_thr:
                return False, "line_punct_ratio"
        if self.char_duplicates_ratio is not None:
            if _duplicates(lines)[1] / max(1, len(text.replace("\n", ""))) > self.char_duplicates_ratio:
                return False, "char_dup_ratio"
        if self.new_line_ratio is not None and text.count("\n") / words > self.new_line_ratio:
            return False, "list_ratio"

        # GopherQualityFilter.
        if self.min_doc_words and words < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and words > self.max_doc_words:
            return False, "gopher_long_doc"
        if self.max_symbol_word_ratio:
            if text.count("#") / words > self.max_symbol_word_ratio:
                return False, "gopher_too_many_hashes"
            if (text.count("...") + text.count("…")) / words > self.max_symbol_word_ratio:
                return False, "gopher_too_many_ellipsis"
        all_lines = text.splitlines() or [""]
        if self.max_bullet_lines_ratio:
            bullets = sum(s.lstrip().startswith(("•", "-", "●", "・", "‧")) for s in all_lines)
            if bullets / len(all_lines) > self.max_bullet_lines_ratio:
                return False, "gopher_too_many_bullets"
        if self.max_ellipsis_lines_ratio:
            ell = sum(s.rstrip().endswith(("...", "…")) for s in all_lines)
            if ell / len(all_lines) > self.max_ellipsis_lines_ratio:
                return False, "gopher_too_many_end_ellipsis"
        if self.max_non_alpha_words_ratio:
            if len(_NON_LETTER.sub("", compact)) / n_chars < self.max_non_alpha_words_ratio:
                return False, "gopher_below_alpha_threshold"
        if self.min_stop_words and sum(w in compact for w in self._stop_chars) < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        return True

"""N-gram whole-word masking (MacBERT style) for one sequence at a time.

A sequence's maskable words are cut at random into consecutive n-grams (n = 1..len(ngram_probs),
drawn with those probabilities); n-grams are then taken in random order until they cover `rate` of
the maskable tokens. So every masked span is whole words, spans never overlap, and the masked
fraction is `rate` in expectation and within one span of it in every sequence. Each chosen token becomes [MASK], a random ordinary token, or
stays itself, with `replace_probs` (80/10/10).

Randomness is counter-based: every draw is a hash of (seed, epoch, sample id, piece, index within the
piece), so a sample is masked the same way however it was batched, on whichever rank or worker,
before or after a resume, and a whole micro-batch is masked in a few vectorised numpy passes.
Without word ids (or with `whole_word: false`) every token is its own word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE = -100  # label of unmasked positions (torch's cross_entropy ignore_index)


@dataclass(frozen=True)
class MaskingConfig:
    ngram_probs: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    replace_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)  # [MASK], random token, unchanged
    whole_word: bool = True

    def __post_init__(self):
        p = np.asarray(self.ngram_probs, dtype=np.float64)
        if p.ndim != 1 or len(p) == 0 or (p < 0).any() or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"masking.ngram_probs must be non-negative and sum to 1, got {list(self.ngram_probs)}")
        r = np.asarray(self.replace_probs, dtype=np.float64)
        if r.shape != (3,) or (r < 0).any() or not np.isclose(r.sum(), 1.0):
            raise ValueError(f"masking.replace_probs must be 3 non-negative numbers summing to 1 "
                             f"([MASK], random, unchanged), got {list(self.replace_probs)}")

    @classmethod
    def from_cfg(cls, m: dict) -> MaskingConfig:
        return cls(tuple(m["ngram_probs"]), tuple(m["replace_probs"]), bool(m["whole_word"]))


@dataclass
class Masker:
    """Masks sequences for one tokenizer: ids of [MASK] and the specials, and the vocabulary size."""

    mask_id: int
    special_ids: tuple[int, ...]
    vocab_size: int  # real (unpadded) vocabulary: random replacements are drawn below it
    config: MaskingConfig = field(default_factory=MaskingConfig)
    seed: int = 0

    def __post_init__(self):
        self._specials = np.asarray(sorted(set(self.special_ids) | {self.mask_id}), dtype=np.int64)
        # random replacements are ordinary tokens only: never a special, never padding of the vocab
        self._replacements = np.setdiff1d(np.arange(self.vocab_size, dtype=np.int64), self._specials)
        self._cum_ngram = np.cumsum(self.config.ngram_probs)
        self._cum_ngram[-1] = 1.0
        p_mask, p_rand, _ = self.config.replace_probs
        self._t_mask, self._t_rand = p_mask, p_mask + p_rand

    def __call__(self, input_ids, word_ids, rate: float, key: tuple[int, ...] = (0, 0, 0)):
        """Mask one sequence; returns (masked input ids, labels) as int64 arrays.

        `input_ids` may contain special tokens (never masked); `word_ids[i]` is the word token i
        starts in (-1 for specials), or None for token-level masking. `key` is (epoch, sample, piece).
        """
        ids = np.asarray(input_ids, dtype=np.int64)
        if word_ids is None:
            words = np.arange(len(ids), dtype=np.int64)
        else:
            words = np.asarray(word_ids, dtype=np.int64)
            if len(words) != len(ids):
                raise ValueError(f"word_ids has {len(words)} entries for {len(ids)} tokens")
        return self.mask_flat(ids, words, np.zeros(len(ids), dtype=np.int64), [key], rate)

    def mask_flat(self, ids: np.ndarray, words: np.ndarray, parts: np.ndarray, keys: list, rate: float):
        """Mask many parts laid out in one flat array at once (a packed micro-batch).

        ids: int64 tokens; words: word number of each token, -1 where nothing may be masked, equal
        numbers only within one word (numbers need not start at 0); parts: index into `keys` of each
        token's part. Every random draw depends only on (seed, key, index within the part), so a
        part is masked exactly as it would be alone.
        """
        out = ids.copy()
        labels = np.full(len(ids), IGNORE, dtype=np.int64)
        if rate <= 0 or not len(ids):
            return out, labels
        ok = (words >= 0) & ~np.isin(ids, self._specials)
        pos = np.flatnonzero(ok)
        if not len(pos):
            return out, labels
        prt = parts[pos]
        seeds = _part_seeds(self.seed, keys)
        n_parts = len(keys)
        starts = np.ones(len(pos), dtype=bool)
        if self.config.whole_word:
            w = words[pos]
            starts[1:] = (w[1:] != w[:-1]) | (pos[1:] != pos[:-1] + 1) | (prt[1:] != prt[:-1])
        word_of = np.cumsum(starts) - 1
        n_words = int(word_of[-1]) + 1
        word_len = np.bincount(word_of, minlength=n_words)
        word_part = prt[starts]
        words_in = np.bincount(word_part, minlength=n_parts)
        word_off = np.cumsum(words_in) - words_in
        local_word = np.arange(n_words) - word_off[word_part]
        # n-gram lengths: one draw per word slot; each part's slots, summed up, cut its words
        grams = np.searchsorted(self._cum_ngram, _uniform(seeds[word_part], local_word, 0), side="right") + 1
        ends = np.cumsum(grams)
        base = np.r_[0, ends][word_off]
        ends_local = ends - base[word_part]
        valid = ends_local - grams < words_in[word_part]
        span_end = word_off[word_part][valid] + np.minimum(ends_local, words_in[word_part])[valid]
        span_part = word_part[valid]
        n_spans = len(span_end)
        span_of_word = np.searchsorted(span_end, np.arange(n_words), side="right")
        span_len = np.bincount(span_of_word, weights=word_len, minlength=n_spans)
        spans_in = np.bincount(span_part, minlength=n_parts)
        local_span = np.arange(n_spans) - (np.cumsum(spans_in) - spans_in)[span_part]
        # spans in random order within each part, taken while a point drawn at random in each span
        # (one draw per part) stays within budget: the masked count is `rate` of the tokens in
        # expectation, also where the budget is less than a span (a 3-token piece at 15%)
        order = np.lexsort((_uniform(seeds[span_part], local_span, 1), span_part))
        o_len, o_part = span_len[order], span_part[order]
        cum = np.cumsum(o_len)
        first = np.r_[True, o_part[1:] != o_part[:-1]]
        cum_local = cum - np.repeat((cum - o_len)[first], np.diff(np.r_[np.flatnonzero(first), len(order)]))
        budget = rate * np.bincount(prt, minlength=n_parts)
        chosen = np.zeros(n_spans, dtype=bool)
        cut = _uniform(seeds, np.full(n_parts, -1), 0)  # index -1: a draw no token's index reaches
        chosen[order[cum_local - o_len * cut[o_part] < budget[o_part]]] = True
        hit = chosen[span_of_word[word_of]]
        sel = pos[hit]
        labels[sel] = ids[sel]
        toks_in = np.bincount(prt, minlength=n_parts)
        local_tok = (np.arange(len(pos)) - (np.cumsum(toks_in) - toks_in)[prt])[hit]
        s_seeds = seeds[prt[hit]]
        u = _uniform(s_seeds, local_tok, 2)
        out[sel[u < self._t_mask]] = self.mask_id
        rand = (u >= self._t_mask) & (u < self._t_rand)
        pick = (_uniform(s_seeds[rand], local_tok[rand], 3) * len(self._replacements)).astype(np.int64)
        out[sel[rand]] = self._replacements[pick]
        return out, labels


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-mixed 64-bit hash (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _part_seeds(seed: int, keys: list) -> np.ndarray:
    k = np.asarray(keys, dtype=np.int64).astype(np.uint64).reshape(len(keys), -1)
    x = np.full(len(keys), np.uint64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k.shape[1]):
            x = _mix(x ^ _mix(k[:, j] + _GOLDEN * np.uint64(j + 1)))
    return x


def _uniform(seeds: np.ndarray, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) numbers, one per (part seed, index within the part, stream)."""
    with np.errstate(over="ignore"):
        x = _mix(seeds + (index.astype(np.uint64) * np.uint64(4) + np.uint64(stream + 1)) * _GOLDEN)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def build_masker(tokenizer_info: dict, masking: dict | None = None, seed: int = 0) -> Masker:
    """A Masker for a tokenizer (`shards.format.read_tokenizer_info`) and a `data.masking` config section
    (defaults when None); e.g. for `twbert inspect`'s mask preview:
    `build_masker(info)(ids, word_ids, rate=0.3, key=(0, sample, 0))`."""
    if masking is None:
        from twbert.training.loader import data_config

        masking = data_config(None)["masking"]
    return Masker(tokenizer_info["mask"], tuple(tokenizer_info["special_ids"]), tokenizer_info["vocab_size"],
                  MaskingConfig.from_cfg(masking), seed=seed)


def rate_schedule(m: dict, total_steps: int | None):
    """step -> masking rate, from the `data.masking` config section."""
    from twbert.training.schedule import Ramp

    start, end = float(m["rate"]), m["final_rate"]
    for name, value in (("rate", start), ("final_rate", end)):
        if value is not None and not 0 <= float(value) < 1:
            raise ValueError(f"data.masking.{name} must be in [0, 1), got {value}")
    if end is None:
        return lambda step: start
    steps = m["schedule_steps"]
    if (steps is None or isinstance(steps, float)) and total_steps is None:
        raise ValueError("data.masking.schedule_steps is a fraction of training (or null = all of it): "
                         "pass total_steps to MLMLoader, or give schedule_steps as a step count")
    total = int(total_steps or 0)
    ramp = Ramp(start=start, end=float(end), total=total, steps=total if steps is None else steps,
                shape=m["schedule_shape"])
    return lambda step: float(ramp(step))

"""N-gram whole-word masking: word boundaries, n-gram spans, rate, 80/10/10, specials, determinism, schedule."""

from __future__ import annotations

import numpy as np
import pytest

from twbert.training.masking import IGNORE, Masker, MaskingConfig, rate_schedule

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 5000


def masker(**kw) -> Masker:
    seed = kw.pop("seed", 0)
    return Masker(MASK, (PAD, UNK, CLS, SEP, MASK), VOCAB, MaskingConfig(**kw), seed=seed)


def sequence(rng, n=512):
    ids = rng.integers(5, VOCAB, size=n)
    words = np.repeat(np.arange(n), rng.integers(1, 5, size=n))[:n]
    return ids, words


def masked_word_runs(words, labels):
    """Lengths (in words) of the maximal runs of masked words, and whether each run ends the sequence."""
    w_ids = np.unique(words)
    chosen = np.array([(labels[words == w] != IGNORE).any() for w in w_ids])
    runs, cur = [], 0
    for c in chosen:
        if c:
            cur += 1
        elif cur:
            runs.append((cur, False))
            cur = 0
    if cur:
        runs.append((cur, True))
    return runs


def test_whole_words_only():
    m, rng = masker(), np.random.default_rng(0)
    for i in range(50):
        ids, words = sequence(rng)
        _, labels = m(ids, words, 0.3, key=(0, i, 0))
        chosen = labels != IGNORE
        for w in np.unique(words):
            part = chosen[words == w]
            assert part.all() or not part.any(), "a word was partly masked"


def test_spans_are_ngrams():
    """With only 4-grams, masked words come in runs of multiples of 4 (bar the sequence's last span)."""
    m, rng = masker(ngram_probs=(0, 0, 0, 1.0)), np.random.default_rng(1)
    ones = masker(ngram_probs=(1.0,))
    lengths_4, lengths_1 = [], []
    for i in range(30):
        ids, words = sequence(rng, 256)
        for run, at_end in masked_word_runs(words, m(ids, words, 0.3, key=(0, i, 0))[1]):
            if not at_end:
                assert run % 4 == 0
            lengths_4.append(run)
        lengths_1 += [r for r, _ in masked_word_runs(words, ones(ids, words, 0.3, key=(0, i, 0))[1])]
    assert np.mean(lengths_4) > 4 and np.mean(lengths_1) < 2


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_rate_within_tolerance(rate):
    m, rng = masker(), np.random.default_rng(2)
    fracs = []
    for i in range(200):
        ids, words = sequence(rng)
        _, labels = m(ids, words, rate, key=(0, i, 0))
        fracs.append((labels != IGNORE).mean())
    assert abs(np.mean(fracs) - rate) < 0.005
    assert max(abs(f - rate) for f in fracs) < 0.03  # at most about half a 4-gram off per sequence


def test_short_pieces_are_masked_at_the_rate_on_average():
    # 3 one-token words at 15%: the budget (0.45 tokens) is less than one span, yet 15% of such
    # pieces' tokens are masked over many samples, not none
    m = masker(ngram_probs=(1.0,))
    ids, words = np.array([11, 12, 13]), np.array([0, 1, 2])
    masked = [(m(ids, words, 0.15, key=(0, i, 0))[1] != IGNORE).sum() for i in range(4000)]
    assert set(masked) <= {0, 1}
    assert abs(np.mean(masked) / 3 - 0.15) < 0.015


def test_replacement_split_and_specials():
    m, rng = masker(), np.random.default_rng(3)
    kinds = np.zeros(3)
    for i in range(100):
        ids, words = sequence(rng, 300)
        # specials inside and around the content, with word id -1 as the shards give them
        ids = np.concatenate([[CLS], ids[:150], [SEP, PAD, UNK], ids[150:], [SEP]])
        words = np.concatenate([[-1], words[:150], [-1, -1, -1], words[150:], [-1]])
        out, labels = m(ids, words, 0.3, key=(1, i, 0))
        special = np.isin(ids, [PAD, UNK, CLS, SEP, MASK])
        assert (labels[special] == IGNORE).all() and (out[special] == ids[special]).all()
        sel = labels != IGNORE
        assert (labels[sel] == ids[sel]).all() and (out[~sel] == ids[~sel]).all()
        is_mask = out[sel] == MASK
        same = out[sel] == ids[sel]
        kinds += [is_mask.sum(), (~is_mask & ~same).sum(), (same & ~is_mask).sum()]
        rand = out[sel][~is_mask & ~same]
        assert (rand >= 5).all() and (rand < VOCAB).all()  # ordinary tokens only
    frac = kinds / kinds.sum()
    # a random draw equal to the original counts as unchanged: 1/VOCAB of the 10%, negligible
    assert np.allclose(frac, [0.8, 0.1, 0.1], atol=0.015), frac


def test_deterministic_per_key_and_seed():
    ids, words = sequence(np.random.default_rng(4))
    a, b = masker(seed=1), masker(seed=1)
    assert all((x == y).all() for x, y in zip(a(ids, words, 0.3, (2, 7, 0)), b(ids, words, 0.3, (2, 7, 0))))
    for other in (a(ids, words, 0.3, (3, 7, 0)), a(ids, words, 0.3, (2, 8, 0)), masker(seed=2)(ids, words, 0.3, (2, 7, 0))):
        assert not (other[1] == a(ids, words, 0.3, (2, 7, 0))[1]).all()


def test_token_level_fallback():
    m, rng = masker(ngram_probs=(1.0,)), np.random.default_rng(5)
    ids, words = sequence(rng, 2000)
    _, labels = m(ids, None, 0.2, key=(0, 0, 0))
    assert abs((labels != IGNORE).mean() - 0.2) < 0.01
    # whole_word off ignores the word ids: words get partly masked
    _, labels = masker(ngram_probs=(1.0,), whole_word=False)(ids, words, 0.5, key=(0, 0, 0))
    partly = [0 < (labels[words == w] != IGNORE).sum() < (words == w).sum() for w in np.unique(words)]
    assert any(partly)


def test_edge_cases():
    m = masker()
    out, labels = m(np.array([CLS, SEP]), np.array([-1, -1]), 0.3)
    assert (labels == IGNORE).all() and list(out) == [CLS, SEP]
    out, labels = m(np.array([10, 11, 12]), np.array([0, 0, 1]), 0.0)
    assert (labels == IGNORE).all()
    with pytest.raises(ValueError, match="word_ids"):
        m(np.array([10, 11]), np.array([0]), 0.3)
    with pytest.raises(ValueError, match="ngram_probs"):
        MaskingConfig(ngram_probs=(0.5, 0.6))
    with pytest.raises(ValueError, match="replace_probs"):
        MaskingConfig(replace_probs=(0.8, 0.2))


def test_rate_schedule():
    cfg = {"rate": 0.3, "final_rate": 0.15, "schedule_steps": None, "schedule_shape": "linear"}
    f = rate_schedule(cfg, total_steps=100)
    assert f(0) == pytest.approx(0.3) and f(50) == pytest.approx(0.225) and f(100) == pytest.approx(0.15)
    assert f(1000) == pytest.approx(0.15)
    g = rate_schedule(cfg | {"schedule_steps": 10}, total_steps=None)
    assert g(5) == pytest.approx(0.225)
    assert rate_schedule(cfg | {"final_rate": None}, None)(77) == 0.3
    with pytest.raises(ValueError, match="total_steps"):
        rate_schedule(cfg, total_steps=None)
    with pytest.raises(ValueError, match="rate"):
        rate_schedule(cfg | {"rate": 1.5}, total_steps=10)


def test_batch_masks_each_part_as_alone():
    """Masking a packed batch equals masking each of its parts on its own (the loader relies on it)."""
    m, rng = masker(), np.random.default_rng(6)
    seqs = [sequence(rng, n) for n in (40, 300, 7, 120)]
    keys = [(0, i, 1) for i in range(len(seqs))]
    ids = np.concatenate([np.r_[CLS, s[0], SEP] for s in seqs])
    words = np.concatenate([np.r_[-1, s[1] + 1000 * i, -1] for i, s in enumerate(seqs)])
    parts = np.concatenate([np.r_[-1, np.full(len(s[0]), i), -1] for i, s in enumerate(seqs)])
    out, labels = m.mask_flat(ids, words, parts, keys, 0.3)
    p = 0
    for s, key in zip(seqs, keys):
        alone = m(s[0], s[1], 0.3, key)
        n = len(s[0])
        assert (out[p + 1:p + 1 + n] == alone[0]).all() and (labels[p + 1:p + 1 + n] == alone[1]).all()
        assert labels[p] == IGNORE and labels[p + n + 1] == IGNORE
        p += n + 2


def test_preview_on_a_real_tokenizer_dir(tmp_path):
    """The mask preview path `twbert inspect` uses: tokenizer dir -> Masker -> one sequence."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from loader_run import write_tokenizer

    from twbert.shards.format import read_tokenizer_info
    from twbert.training.masking import build_masker

    info = read_tokenizer_info(write_tokenizer(tmp_path / "tok"))
    assert (info["pad"], info["unk"], info["cls"], info["sep"], info["mask"]) == (0, 1, 2, 3, 4)
    assert info["vocab_size"] == 1000 and info["special_ids"] == [0, 1, 2, 3, 4]
    ids, words = sequence(np.random.default_rng(7), 100)
    ids = ids % 1000 + 5 * (ids % 1000 < 5)
    out, labels = build_masker(info)(ids, words, 0.3, key=(0, 1, 0))
    assert 0.2 < (labels != IGNORE).mean() < 0.4 and (out[labels == IGNORE] == ids[labels == IGNORE]).all()


def test_reads_a_tokenizer_prepared_by_the_shards_stage(tmp_path):
    """The special ids come from `twbert tokenizer prepare`'s twbert_tokenizer.json."""
    tokenizer = pytest.importorskip("twbert.shards.tokenizer")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from twbert.shards.format import read_tokenizer_info

    base = Tokenizer(WordLevel({f"w{i}": i for i in range(300)}, unk_token="w0"))
    base.pre_tokenizer = Whitespace()
    facts = tokenizer.prepare(base, tmp_path / "tok")
    info = read_tokenizer_info(tmp_path / "tok")
    for role in ("cls", "sep", "mask", "pad", "unk"):
        assert info[role] == facts[f"{role}_token_id"] >= 300
    assert info["vocab_size"] == facts["vocab_size"] == 305
    assert info["padded_vocab_size"] == facts["padded_vocab_size"]
    assert set(info["special_ids"]) >= {info[r] for r in ("cls", "sep", "mask", "pad", "unk")}

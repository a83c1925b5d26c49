"""Best-fit packing, cutting and concatenation: no token lost or doubled, budgets kept, exact state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twbert.training.dataset import cut
from twbert.training.masking import IGNORE
from twbert.training.packing import Concatenator, Packer, seq_tokens

CLS, SEP = 2, 3
CAP = 1024


def no_mask(ids, words, parts, keys):
    return ids, np.full(len(ids), IGNORE, dtype=np.int64)


def parts_stream(rng, n, max_len=512, start=100):
    """Parts whose tokens are unique numbers, so every emitted token can be traced to its part."""
    out, nxt = [], start
    for i in range(n):
        size = int(rng.integers(1, max_len - 1))
        out.append((np.arange(nxt, nxt + size, dtype=np.uint32), np.arange(size, dtype=np.int32), (0, i, 0)))
        nxt += size
    return out


def check(batch, cap):
    ids, cu = batch["input_ids"].numpy(), batch["cu_seqlens"].numpy()
    assert cu.dtype == np.int32 and cu[0] == 0 and cu[-1] == len(ids) == batch["num_tokens"] <= cap
    lens = np.diff(cu)
    assert batch["max_seqlen"] == int(lens.max()) and isinstance(batch["max_seqlen"], int)
    pos = batch["position_ids"].numpy()
    seqs = []
    for s, e in zip(cu[:-1], cu[1:]):
        assert ids[s] == CLS and ids[e - 1] == SEP and (pos[s:e] == np.arange(e - s)).all()
        seqs.append(ids[s + 1:e - 1])
    return seqs


def test_every_token_once_and_budget_kept():
    rng = np.random.default_rng(0)
    parts = parts_stream(rng, 400)
    p = Packer(CAP, CLS, SEP)
    seen, _batches, fills = [], 0, []
    for part in parts:
        p.add([part])
        if p.tokens >= 4 * CAP:
            b = p.pop(no_mask)
            fills.append(b["num_tokens"] / CAP)
            for seq in check(b, CAP):
                # a sequence is exactly one part: consecutive numbers, [CLS] and [SEP] around them
                assert (np.diff(seq) == 1).all()
                seen.append(seq)
    while len(p):
        seen += check(p.pop(no_mask), CAP)
    emitted = np.concatenate(seen)
    expected = np.concatenate([q[0] for q in parts]).astype(np.int64)
    assert len(emitted) == len(expected) and (np.sort(emitted) == expected).all()  # none lost, none twice
    assert np.mean(fills) > 0.97  # best fit with a 4-batch buffer


def test_oldest_goes_first():
    """The oldest sequence is always in the next batch, so none starves behind better fits."""
    p = Packer(CAP, CLS, SEP)
    old = (np.arange(10, 17, dtype=np.uint32), None, (0, 0, 0))
    p.add([old])
    rng = np.random.default_rng(1)
    for part in parts_stream(rng, 50, start=1000):
        p.add([part])
    first = p.pop(no_mask)["input_ids"].numpy()
    assert first[1:8].tolist() == list(range(10, 17))


def test_state_round_trip_is_exact():
    rng = np.random.default_rng(2)
    parts = parts_stream(rng, 200)
    a = Packer(CAP, CLS, SEP)
    for q in parts[:100]:
        a.add([q])
    for _ in range(3):
        a.pop(no_mask)
    b = Packer(CAP, CLS, SEP)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.tokens == a.tokens and len(b) == len(a)
    for q in parts[100:]:
        a.add([q])
        b.add([q])
    while len(a):
        x, y = a.pop(no_mask), b.pop(no_mask)
        assert all((x[k] == y[k]).all() for k in ("input_ids", "labels", "position_ids", "cu_seqlens"))
    assert len(b) == 0


def test_too_long_sequence_is_refused():
    p = Packer(16, CLS, SEP)
    with pytest.raises(ValueError, match="tokens_per_batch"):
        p.add([(np.arange(20, dtype=np.uint32), None, (0, 0, 0))])
    with pytest.raises(IndexError):
        p.pop(no_mask)


@pytest.mark.parametrize("with_words", [True, False])
def test_cut_balanced_at_word_starts(with_words):
    rng = np.random.default_rng(3)
    for n in [1, 100, 1022, 1023, 3000, 8190]:
        ids = rng.integers(5, 900, size=n).astype(np.uint32)
        words = np.repeat(np.arange(n), rng.integers(1, 6, size=n))[:n].astype(np.int32) if with_words else None
        pieces = cut(ids, words, 1022)
        assert len(pieces) == -(-n // 1022)
        assert (np.concatenate([p[0] for p in pieces]) == ids).all()
        sizes = [len(p[0]) for p in pieces]
        assert max(sizes) <= 1022 and min(sizes) >= max(sizes) // 2  # balanced: no tiny tail
        if with_words:
            start = 0
            for p_ids, p_words in pieces:
                assert p_words[0] == 0 and (p_words == words[start:start + len(p_ids)] - words[start]).all()
                assert start == 0 or words[start] != words[start - 1]  # cut at a word start
                start += len(p_ids)


def test_concatenator_fills_and_round_trips():
    rng = np.random.default_rng(4)
    parts = parts_stream(rng, 100, max_len=60)
    c = Concatenator(200, enabled=True)
    seqs = [s for q in parts[:50] for s in c.add(q)]
    d = Concatenator(200, enabled=True)
    d.load_state_dict(json.loads(json.dumps(c.state_dict())))
    rest_c = [s for q in parts[50:] for s in c.add(q)]
    rest_d = [s for q in parts[50:] for s in d.add(q)]
    assert [[q[2] for q in s] for s in rest_c] == [[q[2] for q in s] for s in rest_d]
    for s in seqs + rest_c:
        assert seq_tokens(s) - 2 <= 200
    done = [q[2] for s in seqs + rest_c for q in s] + [q[2] for q in c.open]
    assert done == [q[2] for q in parts]  # in order, each once
    # a sequence is closed only when the next part would not fit
    for s, nxt in zip(seqs, seqs[1:]):
        assert seq_tokens(s) - 2 + 1 + len(nxt[0][0]) > 200
    # in a batch, parts of one sequence are separated by [SEP]
    p = Packer(1024, CLS, SEP)
    p.add(seqs[0])
    ids = p.pop(no_mask)["input_ids"].numpy()
    assert (ids == SEP).sum() == len(seqs[0]) and ids[0] == CLS
    assert Concatenator(200, enabled=False).add(parts[0]) == [[parts[0]]]

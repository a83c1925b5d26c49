"""The encoder on packed batches: shapes, isolation between sequences, windows, sparse head, FLOPs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _models import perturbed_model

from twbert.training.model import EncoderConfig, EncoderForMLM, pack

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 96


def tiny(**kw) -> EncoderConfig:
    base = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                intermediate_size=96, local_attention=8, pad_token_id=0, cls_token_id=2, sep_token_id=3,
                mask_token_id=4)
    return EncoderConfig(**{**base, **kw})


def seqs(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[2] + torch.randint(5, VOCAB, (n - 2,), generator=g).tolist() + [3] for n in lengths]


def run(m, batch, labels=None):
    return m(batch["input_ids"], batch["position_ids"], batch["cu_seqlens"], batch["max_seqlen"], labels=labels)


def test_shapes_and_hf_parameter_names():
    transformers = pytest.importorskip("transformers")
    c = tiny()
    m = perturbed_model(c)
    b = pack(seqs([20, 9, 31]))
    out = run(m, b)
    assert out["logits"].shape == (60, VOCAB) and "loss" not in out
    assert m.decoder.weight is m.model.embeddings.tok_embeddings.weight
    assert isinstance(m.model.layers[0].attn_norm, torch.nn.Identity)
    assert [layer.attn.window for layer in m.model.layers] == [(-1, -1), (4, 4), (4, 4)]
    hf = transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(**c.to_hf_config()))
    ours = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    assert ours == theirs
    assert m.num_parameters() == hf.num_parameters()


def test_sequences_do_not_attend_across_each_other():
    m = perturbed_model(tiny())
    a, b_, c = seqs([25, 14, 30])
    base = run(m, pack([a, b_, c]))["logits"]
    other = [b_[0]] + [(t * 7) % (VOCAB - 5) + 5 for t in b_[1:-1]] + [b_[-1]]
    changed = run(m, pack([a, other, c]))["logits"]
    assert not torch.allclose(changed[25:39], base[25:39])  # the changed sequence does change
    assert torch.equal(changed[:25], base[:25]) and torch.equal(changed[39:], base[39:])
    # Alone, or packed with others: the same outputs (positions restart at 0 in every sequence).
    torch.testing.assert_close(run(m, pack([a]))["logits"], base[:25], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(run(m, pack([c]))["logits"], base[39:], rtol=1e-5, atol=1e-5)
    twice = run(m, pack([a, a]))["logits"]
    torch.testing.assert_close(twice[:25], twice[25:], rtol=1e-5, atol=1e-5)


def test_local_layers_respect_the_window():
    """Layer 0 (global) is silenced, so only local layer 1 mixes tokens: +-4 around each token."""
    m = perturbed_model(tiny(num_hidden_layers=2, local_attention=8))
    with torch.no_grad():
        m.model.layers[0].attn.Wo.weight.zero_()
    (s,) = seqs([40])
    base = run(m, pack([s]))["logits"]
    i = 20

    def moved(pos):
        s2 = list(s)
        s2[pos] = 5 if s2[pos] != 5 else 6
        return not torch.equal(run(m, pack([s2]))["logits"][i], base[i])

    assert moved(i - 4) and moved(i + 4)
    assert not moved(i - 5) and not moved(i + 5)


def test_sparse_prediction_equals_dense_head_at_masked_positions():
    """The loss over the masked rows, from labels or from indices (padded with -100 targets), is the
    dense head's; training returns no logits (they would hold masked x vocab floats)."""
    m = perturbed_model(tiny())
    b = pack(seqs([20, 9, 31]))
    labels = torch.full_like(b["input_ids"], -100)
    where = torch.tensor([1, 5, 6, 22, 30, 41, 58])
    labels[where] = b["input_ids"][where]
    dense = run(m, b)["logits"]
    want = F.cross_entropy(dense[where], labels[where])
    out = run(m, b, labels)
    assert out["num_masked"].item() == len(where) and "logits" not in out
    torch.testing.assert_close(out["loss"], want, rtol=1e-5, atol=1e-6)
    padded = torch.cat([where, torch.zeros(5, dtype=torch.long)])
    targets = torch.cat([labels[where], torch.full((5,), -100)])
    by_index = m(b["input_ids"], b["position_ids"], b["cu_seqlens"], b["max_seqlen"], masked_positions=padded,
                 masked_targets=targets)
    torch.testing.assert_close(by_index["loss"], want, rtol=1e-5, atol=1e-6)
    assert by_index["num_masked"].item() == len(where)
    none = run(m, b, torch.full_like(labels, -100))
    assert none["num_masked"].item() == 0 and none["loss"].item() == 0.0


def test_activation_checkpointing_gives_the_same_gradients():
    m = perturbed_model(tiny())
    b = pack(seqs([20, 9, 31]))
    labels = torch.where(torch.arange(60) % 3 == 0, b["input_ids"], -100)
    results = []
    for recompute in (False, True):
        m.zero_grad()
        m.model.checkpoint_layers = recompute
        run(m, b, labels)["loss"].backward()
        results.append([p.grad.clone() for p in m.parameters()])
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-7)


def test_training_steps_lower_the_loss_and_reach_every_parameter():
    torch.manual_seed(0)
    m = EncoderForMLM(tiny()).train()
    b = pack(seqs([30, 20, 40], seed=3))
    g = torch.Generator().manual_seed(0)
    masked = torch.rand(b["num_tokens"], generator=g) < 0.3
    labels = torch.where(masked, b["input_ids"], torch.full_like(b["input_ids"], -100))
    inputs = torch.where(masked, torch.full_like(b["input_ids"], 4), b["input_ids"])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = m(inputs, b["position_ids"], b["cu_seqlens"], b["max_seqlen"], labels=labels)
        opt.zero_grad()
        out["loss"].backward()
        if not losses:
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_flops_per_token_matches_counted_matmul_flops():
    """6 x params + attention term, against torch's FLOP counter on a forward + backward pass."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    c = tiny(local_attention=64)
    m = EncoderForMLM(c).train()
    (s,) = seqs([48])  # shorter than the window: every layer sees all 48 tokens
    b = pack([s])
    labels = torch.full_like(b["input_ids"], -100)
    labels[::4] = b["input_ids"][::4]
    n_masked = int((labels != -100).sum())
    # The math kernel runs attention as bmm's the counter sees (CPU's fused kernel it does not).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run(m, b, labels)["loss"].backward()
    expected = m.num_flops_per_token(48, n_masked / 48) * 48
    assert counter.get_total_flops() == pytest.approx(expected, rel=1e-9)
    # Local layers are capped at the window, global ones are not.
    assert m.num_flops_per_token(1024) - m.num_flops_per_token(512) == pytest.approx(12 * 64 * 512 * 1)


def test_batch_flops_cap_the_window_per_sequence():
    """A packed batch costs what its sequences cost one by one: the local window caps each sequence's
    context, not the batch's average context (docs/training.md, MFU)."""
    from twbert.training.trainer import batch_flops

    m = EncoderForMLM(tiny(local_attention=128))  # local layers see at most 129 tokens
    lengths = [300, 10, 10, 10]  # mean context sum(L^2)/sum(L) = 273.8 > 129; the short ones see 10
    b = pack(seqs(lengths))
    n_masked, tokens = 99, sum(lengths)
    one_by_one = sum(m.num_flops_per_token(n, n_masked / tokens) * n for n in lengths)
    assert batch_flops(m, b, n_masked) == pytest.approx(one_by_one, rel=1e-12)
    ctx, local = m.attention_context(torch.tensor(lengths))
    assert ctx == pytest.approx(sum(n * n for n in lengths) / tokens)
    assert local == pytest.approx((300 * 129 + 3 * 10 * 10) / tokens)


def test_config_checks():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        tiny(hidden_size=66)
    with pytest.raises(ValueError, match="attn_backend must be"):
        tiny(attn_backend="xformers")
    with pytest.raises(ValueError, match="cannot run on cpu"):  # a clear error, not a kernel's
        m = EncoderForMLM(tiny(attn_backend="varlen"))
        run(m, pack(seqs([10])))
    with pytest.raises(ValueError, match="unknown model settings"):
        EncoderConfig.from_dict({"hidden_size": 64, "num_heads": 4})
    hf = tiny().to_hf_config()
    assert hf["global_rope_theta"] == hf["rope_parameters"]["full_attention"]["rope_theta"] == 160000.0
    assert hf["local_rope_theta"] == hf["rope_parameters"]["sliding_attention"]["rope_theta"] == 10000.0
    assert hf["layer_types"] == ["full_attention", "sliding_attention", "sliding_attention"]

"""The chunked decoder + cross-entropy against the plain one: loss and every gradient, compiled too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from twbert.training.head_loss import chunk_rows_for, linear_cross_entropy

pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(rows=50, hidden=16, vocab=70, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, hidden, generator=g, requires_grad=True)
    w = (torch.randn(vocab, hidden, generator=g) * 0.3).requires_grad_()
    b = (torch.randn(vocab, generator=g) * 0.1).requires_grad_() if bias else None
    t = torch.randint(0, vocab, (rows,), generator=g)
    t[::7] = -100  # padding rows
    return x, w, b, t


def grads(loss, *params):
    return torch.autograd.grad(loss, [p for p in params if p is not None])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [8, 13, 1000])
def test_matches_plain_cross_entropy(chunk, bias):
    x, w, b, t = inputs(bias=bias)
    want = F.cross_entropy(F.linear(x, w, b), t, reduction="sum")
    got = linear_cross_entropy(x, w, b, t, chunk_rows=chunk)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    scale = torch.tensor(0.37)  # backward scales the gradients computed in forward
    for a, e in zip(grads(got * scale, x, w, b), grads(want * scale, x, w, b)):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_and_no_grad():
    x, w, b, t = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = F.cross_entropy(F.linear(x, w, b).float(), t, reduction="sum")
        got = linear_cross_entropy(x, w, b, t, chunk_rows=16)
    torch.testing.assert_close(got, want, rtol=2e-2, atol=1e-1)
    gx, gw, gb = grads(got, x, w, b)
    assert gx.dtype == gw.dtype == gb.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(x, w, b, t), F.cross_entropy(F.linear(x, w, b), t,
                                                                                  reduction="sum"))


def test_compiles_into_one_graph_whatever_the_row_count():
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()
    f = torch.compile(lambda x, w, b, t: linear_cross_entropy(x, w, b, t, chunk_rows=8), dynamic=True,
                      fullgraph=True)
    for rows in (50, 23, 64):
        x, w, b, t = inputs(rows=rows)
        got = f(x, w, b, t)
        got.backward()
        torch.testing.assert_close(got, F.cross_entropy(F.linear(x, w, b), t, reduction="sum"))
    assert counts["stats"]["unique_graphs"] == 1, dict(counts["stats"])


def test_chunk_rows():
    assert chunk_rows_for(151680) == 384 and chunk_rows_for(96) % 64 == 0

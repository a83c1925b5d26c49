"""Every attention backend against a naive per-sequence reference (float64, explicit softmax)."""

from __future__ import annotations

import pytest
import torch

from twbert.training.attention import BACKENDS, attention, available_backends, resolve_backend

pytestmark = pytest.mark.usefixtures("one_thread")

def naive(q, k, v, cu_seqlens, window):
    """Each sequence on its own, scores masked by |i - j| outside the window, in float64."""
    out = torch.empty_like(q, dtype=torch.float64)
    left, right = window
    for s, e in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
        qs, ks, vs = (x[s:e].double().transpose(0, 1) for x in (q, k, v))  # (H, L, D)
        scores = qs @ ks.transpose(1, 2) / q.shape[-1] ** 0.5
        i = torch.arange(e - s)
        allowed = torch.ones(e - s, e - s, dtype=torch.bool)
        if left >= 0:
            allowed &= i[:, None] - i[None, :] <= left
        if right >= 0:
            allowed &= i[None, :] - i[:, None] <= right
        scores = scores.masked_fill(~allowed, float("-inf"))
        out[s:e] = (scores.softmax(-1) @ vs).transpose(0, 1)
    return out


def packed(lengths, heads=3, dim=16, device="cpu", dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    q, k, v = (torch.randn(total, heads, dim, generator=g).to(device, dtype) for _ in range(3))
    cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32).to(device)
    return q, k, v, cu, max(lengths)


LENGTHS = [37, 1, 90, 12, 64]
WINDOWS = [(-1, -1), (4, 4), (16, 16), (3, 7)]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("backend", available_backends("cpu"))
def test_cpu_backends_match_reference(backend, window):
    q, k, v, cu, maxlen = packed(LENGTHS)
    out = attention(q, k, v, cu, maxlen, window, backend)
    assert out.shape == q.shape and out.dtype == q.dtype
    torch.testing.assert_close(out.double(), naive(q, k, v, cu, window), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", available_backends("cpu"))
def test_cpu_backend_gradients_match_reference(backend):
    q, k, v, cu, maxlen = packed([20, 5, 33], heads=2, dim=8)
    window = (4, 4)
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    ref_leaves = [x.double().clone().requires_grad_() for x in (q, k, v)]
    grad_out = torch.randn_like(q)
    attention(*leaves, cu, maxlen, window, backend).backward(grad_out)
    naive(*ref_leaves, cu, window).backward(grad_out.double())
    for mine, ref in zip(leaves, ref_leaves):
        assert torch.isfinite(mine.grad).all()
        torch.testing.assert_close(mine.grad.double(), ref.grad, rtol=1e-5, atol=1e-5)


def test_window_edges_and_sequence_isolation():
    """A key exactly `left` tokens away counts, one further does not; other sequences never do."""
    q, k, v, cu, maxlen = packed([40, 40])
    window, i = (5, 5), 20
    base = attention(q, k, v, cu, maxlen, window, "sdpa")

    def changed_at(pos):
        k2, v2 = k.clone(), v.clone()
        k2[pos] += 3.0
        v2[pos] += 3.0
        return not torch.equal(attention(q, k2, v2, cu, maxlen, window, "sdpa")[i], base[i])

    assert changed_at(i - 5) and changed_at(i + 5)
    assert not changed_at(i - 6) and not changed_at(i + 6)
    # Global attention: everything in the same sequence matters, nothing in the next one does.
    glob = attention(q, k, v, cu, maxlen, (-1, -1), "sdpa")
    k2 = k.clone()
    k2[0] += 3.0
    assert not torch.equal(attention(q, k2, v, cu, maxlen, (-1, -1), "sdpa")[39], glob[39])
    assert torch.equal(attention(q, k2, v, cu, maxlen, (-1, -1), "sdpa")[40:], glob[40:])


def test_backend_resolution():
    assert resolve_backend("auto", "cpu") == "sdpa"
    assert resolve_backend("sdpa", "cpu") == "sdpa"
    for name in ("flash", "varlen"):
        with pytest.raises(ValueError, match="cannot run on cpu"):
            resolve_backend(name, "cpu")
    with pytest.raises(ValueError, match="unknown attention backend"):
        resolve_backend("xformers", "cpu")
    assert set(available_backends("cpu")) <= set(BACKENDS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run through the device tool)")
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("backend", available_backends("cuda") if torch.cuda.is_available() else [])
def test_gpu_backends_match_reference_in_bf16(backend, window):
    q, k, v, cu, maxlen = packed(LENGTHS + [700, 1500], heads=4, dim=64, device="cuda", dtype=torch.bfloat16)
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    out = attention(*leaves, cu, maxlen, window, backend)
    ref = naive(q.cpu(), k.cpu(), v.cpu(), cu.cpu(), window)
    torch.testing.assert_close(out.double().cpu(), ref, rtol=2e-2, atol=2e-2)
    grad_out = torch.randn_like(q)
    out.backward(grad_out)
    ref_leaves = [x.detach().float().requires_grad_() for x in (q, k, v)]
    attention(*ref_leaves, cu, maxlen, window, "sdpa").backward(grad_out.float())
    for mine, ref_ in zip(leaves, ref_leaves):
        torch.testing.assert_close(mine.grad.float(), ref_.grad, rtol=5e-2, atol=5e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run through the device tool)")
@pytest.mark.parametrize("backend", available_backends("cuda") if torch.cuda.is_available() else [])
def test_gpu_backends_on_the_models_strided_qkv_compiled_over_changing_geometry(backend):
    """As the model calls it: q, k, v are strided views of one fused projection (unbind of a
    (T, 3, H, D) tensor), the call is compiled, and every batch has a new token count, sequence count
    and max_seqlen. Outputs match the reference and nothing recompiles after the first batch."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")
    fn = torch.compile(lambda q, k, v, cu, m, w: attention(q, k, v, cu, m, w, backend), backend=counter,
                       dynamic=True)
    for i, lengths in enumerate([[37, 300, 12, 900], [1500], [64, 65, 66, 200, 7, 3], [400, 800]]):
        g = torch.Generator().manual_seed(i)
        qkv = torch.randn(sum(lengths), 3, 4, 64, generator=g).to("cuda", torch.bfloat16).requires_grad_()
        q, k, v = qkv.unbind(1)
        assert not q.is_contiguous()
        cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32).cuda()
        for window in [(-1, -1), (64, 64)]:
            out = fn(q, k, v, cu, max(lengths), window)
            ref = naive(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), cu.cpu(), window)
            torch.testing.assert_close(out.double().cpu(), ref, rtol=2e-2, atol=2e-2)
            out.sum().backward()
    assert counter.frame_count <= 2, f"{counter.frame_count} compiles for 4 geometries x 2 windows"


def test_auto_never_picks_the_cudnn_route():
    assert resolve_backend("auto", "cpu") == "sdpa"
    assert "varlen_cudnn" in BACKENDS

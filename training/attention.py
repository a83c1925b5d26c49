"""Attention over packed, unpadded sequences: every backend takes the same varlen arguments.

    attention(q, k, v, cu_seqlens, max_seqlen, window_size=(-1, -1), backend="auto") -> (T, H, D)

`q`, `k`, `v` are (T, heads, head_dim): all sequences back to back. `cu_seqlens` (int32, B+1) marks
where each sequence starts; no token attends outside its own sequence. `window_size=(l, r)` lets
token i see keys i-l … i+r of its sequence (inclusive, flash-attn's convention); (-1, -1) is global.
Attention is bidirectional (an encoder), never causal.

Backends, fastest first ("auto" takes the first that can run on the tensors' device):
- "fa3":    FlashAttention-3 (flash_attn_interface, built from flash-attn's hopper/), on compute
            capability 9.x only;
- "flash":  flash_attn.flash_attn_varlen_func (the flash-attn package >= 2.7, whose kernels are
            torch custom ops, so torch.compile keeps them in the graph);
- "varlen": torch.nn.attention.varlen.varlen_attn (torch >= 2.11), always on its FlashAttention
            kernel. torch 2.14 sends full-window calls to cuDNN on compute capability 9.x/10.x when
            cuDNN >= 9.18 (varlen.py `_can_use_cudnn`), and cuDNN's graph cache is keyed by the sequence
            count, max_seqlen and token count, so packed batches rebuild a graph on nearly every call.
            A window wider than any sequence is the same attention and keeps the call on
            FlashAttention (forward and backward both decide by the window), whose kernel reads a
            window >= max_seqlen as none;
- "varlen_cudnn": the same function left to route itself (global layers on cuDNN where it applies),
            for scripts/gpu_check.sh to time against "varlen"; never chosen by auto;
- "sdpa":   the reference, any device: sequences padded to max_seqlen, then
            F.scaled_dot_product_attention with a key-padding (+ window) mask. This is the
            block-diagonal mask of the packed batch without its T x T cost.
The CUDA kernels need fp16/bf16: fp32 inputs are run in bf16 and cast back (as HF ModernBERT does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Looked up once at import, so that torch.compile traces plain constants.
try:
    from flash_attn import flash_attn_varlen_func
except ImportError:
    flash_attn_varlen_func = None
try:
    from flash_attn_interface import flash_attn_varlen_func as fa3_varlen_func
except ImportError:
    fa3_varlen_func = None
try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:
    varlen_attn = None

BACKENDS = ("fa3", "flash", "varlen", "varlen_cudnn", "sdpa")
WIDE = 1 << 24  # a window no sequence reaches: global attention that stays off the cuDNN route


def available_backends(device: torch.device | str) -> list[str]:
    """Backends that can run on `device`, fastest first."""
    device = torch.device(device)
    found = []
    if device.type == "cuda":
        if fa3_varlen_func is not None and torch.cuda.get_device_capability(device)[0] == 9:
            found.append("fa3")
        if flash_attn_varlen_func is not None:
            found.append("flash")
        if varlen_attn is not None:
            found += ["varlen", "varlen_cudnn"]
    found.append("sdpa")
    return found


def resolve_backend(name: str, device: torch.device | str) -> str:
    """The backend `name` stands for on `device`; raises ValueError if it cannot run there."""
    usable = available_backends(device)
    if name == "auto":
        return next(b for b in usable if b != "varlen_cudnn")
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}: choose auto, {', '.join(BACKENDS)}")
    if name not in usable:
        raise ValueError(
            f"attention backend {name!r} cannot run on {torch.device(device)} "
            f"(usable there: {', '.join(usable)}); fa3 needs flash_attn_interface and a Hopper GPU, flash the "
            "flash-attn package (pip install 'twbert[gpu]') and CUDA, varlen CUDA and torch >= 2.11"
        )
    return name


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    window_size: tuple[int, int] = (-1, -1),
    backend: str = "auto",
) -> torch.Tensor:
    backend = resolve_backend(backend, q.device)
    if backend == "fa3":
        return _fa3(q, k, v, cu_seqlens, max_seqlen, window_size)
    if backend == "flash":
        return _flash(q, k, v, cu_seqlens, max_seqlen, window_size)
    if backend == "varlen":
        if tuple(window_size) == (-1, -1):
            window_size = (WIDE, WIDE)
        return _varlen(q, k, v, cu_seqlens, max_seqlen, window_size)
    if backend == "varlen_cudnn":
        return _varlen(q, k, v, cu_seqlens, max_seqlen, window_size)
    return sdpa_reference(q, k, v, cu_seqlens, max_seqlen, window_size)


def _half(q, k, v):
    if q.dtype in (torch.float16, torch.bfloat16):
        return q, k, v
    return q.to(torch.bfloat16), k.to(torch.bfloat16), v.to(torch.bfloat16)


def _flash(q, k, v, cu_seqlens, max_seqlen, window_size):
    dtype = q.dtype
    q, k, v = _half(q, k, v)
    out = flash_attn_varlen_func(
        q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen,
        dropout_p=0.0, causal=False, window_size=tuple(window_size),
    )
    return out.to(dtype)


def _fa3(q, k, v, cu_seqlens, max_seqlen, window_size):
    dtype = q.dtype
    q, k, v = _half(q, k, v)
    out = fa3_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, causal=False,
                          window_size=tuple(window_size))
    if isinstance(out, tuple):  # some FA3 builds also return the log-sum-exp
        out = out[0]
    return out.to(dtype)


def _varlen(q, k, v, cu_seqlens, max_seqlen, window_size):
    dtype = q.dtype
    q, k, v = _half(q, k, v)
    out = varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, window_size=tuple(window_size))
    return out.to(dtype)


def sdpa_reference(q, k, v, cu_seqlens, max_seqlen, window_size=(-1, -1)):
    """Pad the packed sequences to (B, max_seqlen), attend with a mask, unpad."""
    total, heads, dim = q.shape
    batch = cu_seqlens.shape[0] - 1
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    seq = torch.repeat_interleave(torch.arange(batch, device=q.device), lengths, output_size=total)
    pos = torch.arange(total, device=q.device) - cu_seqlens.long()[seq]
    slot = seq * max_seqlen + pos  # where each token sits in the padded (B * max_seqlen) layout

    def pad(x):
        out = x.new_zeros(batch * max_seqlen, heads, dim)
        out[slot] = x
        return out.view(batch, max_seqlen, heads, dim).transpose(1, 2)  # (B, H, L, D)

    idx = torch.arange(max_seqlen, device=q.device)
    mask = (idx[None, None, :] < lengths[:, None, None]).expand(batch, max_seqlen, max_seqlen)
    left, right = window_size
    if left >= 0:
        mask = mask & (idx[None, :, None] - idx[None, None, :] <= left)
    if right >= 0:
        mask = mask & (idx[None, None, :] - idx[None, :, None] <= right)
    # Padding query rows see everything: a row with no key would give NaN (and NaN gradients).
    mask = mask | (idx[None, :, None] >= lengths[:, None, None])
    out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=mask[:, None])
    return out.transpose(1, 2).reshape(batch * max_seqlen, heads, dim)[slot]

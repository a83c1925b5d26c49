"""The MLM decoder and its cross-entropy, fused and chunked over the masked rows.

    linear_cross_entropy(x (M, h), weight (V, h), bias (V,) | None, targets (M,)) -> summed loss

A plain `F.cross_entropy(decoder(x).float(), targets)` holds M x V logits several times over: the
bf16 logits, their fp32 copy, log_softmax saved for backward and two more in backward. At 19.7k
masked tokens and a 151,680 vocabulary that is over 50 GB. Here the rows go through in chunks of
`chunk_rows`: each chunk's logits, softmax and gradient live only while that chunk is computed, and
the gradients of x, weight and bias are computed in the forward pass (the loss is a scalar, so
backward only scales them), as Liger's fused linear cross-entropy does. Peak memory is a few
chunk x V buffers plus one fp32 V x h gradient, whatever M is (docs/training.md, memory model).

It is a torch custom op, so torch.compile keeps it as one opaque node: no graph break and no
specialisation on M (the chunk loop would otherwise unroll per M). Targets of -100 are ignored
(padding rows: the trainer pads M to a bucket so that compiled graphs do not depend on it).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

IGNORE = -100
CHUNK_ELEMENTS = 1 << 26  # logits per chunk: 64M x 4 bytes = 256 MB of fp32 at any vocabulary


def chunk_rows_for(vocab_size: int) -> int:
    """Rows per chunk: CHUNK_ELEMENTS logits, a multiple of 64 rows (384 at 151,680)."""
    return max(64, CHUNK_ELEMENTS // vocab_size // 64 * 64)


@torch.library.custom_op("twbert::linear_cross_entropy", mutates_args=())
def _lce(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
         chunk_rows: int, half: bool, need_grad: bool
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    dtype = torch.bfloat16 if half else x.dtype  # the matmul dtype (autocast's)
    xd, wd = x.to(dtype), weight.to(dtype)
    bd = None if bias is None else bias.to(dtype)
    rows = x.shape[0]
    loss = torch.zeros((), dtype=torch.float32, device=x.device)
    gx = torch.empty_like(x) if need_grad else x.new_empty(0)
    gw = torch.zeros(weight.shape, dtype=torch.float32, device=x.device) if need_grad else x.new_empty(0)
    gb = torch.zeros(weight.shape[0], dtype=torch.float32, device=x.device) if need_grad and bias is not None \
        else x.new_empty(0)
    for s in range(0, rows, chunk_rows):
        xc, tc = xd[s:s + chunk_rows], targets[s:s + chunk_rows]
        z = (xc @ wd.t() if bd is None else torch.addmm(bd, xc, wd.t())).float()
        valid = tc != IGNORE
        t = tc.clamp(min=0)[:, None]
        picked = z.gather(1, t).squeeze(1)
        # log-sum-exp in place over z (torch.logsumexp would allocate another chunk)
        top = z.amax(dim=-1, keepdim=True)
        z.sub_(top).exp_()
        total = z.sum(dim=-1, keepdim=True)
        loss += ((top + total.log()).squeeze(1) - picked).mul(valid).sum()
        if not need_grad:
            continue
        # d loss / d logits = softmax - onehot, zero on ignored rows; in place over z
        z.div_(total)
        z.scatter_add_(1, t, torch.full_like(t, -1, dtype=z.dtype))
        z.mul_(valid[:, None])
        g = z.to(dtype)
        del z
        gx[s:s + chunk_rows] = (g @ wd).to(x.dtype)
        if dtype == gw.dtype:
            gw.addmm_(g.t(), xc)  # no V x h temporary
        else:  # bf16 products into the fp32 sum (an fp32-output bf16 matmul is CUDA-only)
            gw += g.t() @ xc
        if bias is not None:
            gb += g.float().sum(0)
    return loss, gx, gw, gb


@_lce.register_fake
def _lce_fake(x, weight, bias, targets, chunk_rows, half, need_grad):
    empty = x.new_empty(0)
    return (x.new_empty((), dtype=torch.float32), torch.empty_like(x) if need_grad else empty,
            weight.new_empty(weight.shape, dtype=torch.float32) if need_grad else empty,
            weight.new_empty(weight.shape[0], dtype=torch.float32) if need_grad and bias is not None else empty)


def _setup(ctx, inputs, output):
    _, gx, gw, gb = output
    x, weight, bias = inputs[:3]
    ctx.has_bias = bias is not None
    ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
    ctx.save_for_backward(gx, gw, gb)


def _backward(ctx, grad_loss, *_):
    gx, gw, gb = ctx.saved_tensors
    if gx.numel() == 0 and gw.numel() == 0:
        raise RuntimeError("linear_cross_entropy ran without gradients (need_grad=False) and cannot backpropagate")
    xt, wt, bt = ctx.dtypes
    # in place: a second V x h fp32 buffer would be the largest thing in the head's backward
    return (gx.mul_(grad_loss).to(xt), gw.mul_(grad_loss).to(wt), gb.mul_(grad_loss).to(bt) if ctx.has_bias else None,
            None, None, None, None)


_lce.register_autograd(_backward, setup_context=_setup)


@register_flop_formula(torch.ops.twbert.linear_cross_entropy)
def _lce_flops(x_shape, w_shape, *args, need_grad: bool = True, **kwargs) -> int:
    # logits, then (in forward, for backward) the input and weight gradients: 3 matmuls, as nn.Linear
    rows, hidden = x_shape
    need_grad = args[-1] if len(args) >= 5 else need_grad
    return 2 * rows * hidden * w_shape[0] * (3 if need_grad else 1)


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                         chunk_rows: int | None = None) -> torch.Tensor:
    """sum over rows of cross_entropy(x @ weight.T + bias, targets), ignoring targets of -100.

    Under autocast the matmuls run in its dtype (as nn.Linear's would) and the softmax in fp32."""
    dev = x.device.type
    half = torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16
    need_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    rows = chunk_rows or chunk_rows_for(weight.shape[0])
    loss, *_ = _lce(x, weight, bias, targets, rows, half, need_grad)
    return loss

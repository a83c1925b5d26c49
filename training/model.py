"""A ModernBERT-style encoder over packed, unpadded batches, with a sparse MLM head.

The batch is the loader's (docs/architecture.md): all sequences back to back in one flat tensor of
T tokens, `cu_seqlens` marking the boundaries, `position_ids` restarting at 0 in every sequence.
There is no padding anywhere, so no FLOP is spent on it.

Architecture (Warner et al. 2024, "ModernBERT"):
- token embeddings -> LayerNorm (no absolute positions: RoPE carries position);
- N pre-norm layers: fused Wqkv -> RoPE -> attention -> Wo, then a GeGLU MLP; layer 0 skips the
  attention pre-norm because the embedding norm just ran;
- every `global_attn_every_n_layers`-th layer (layer % 3 == 0) attends globally with RoPE theta
  160k; the others attend within a sliding window of `local_attention` tokens (+-64) with theta 10k;
- final LayerNorm; MLM head dense -> GELU -> LayerNorm -> decoder tied to the token embeddings;
- no biases except the decoder's; LayerNorms have no bias either.

Parameter names and shapes are transformers' ModernBertForMaskedLM's, so the state dict *is* an HF
checkpoint (training/export.py only adds config.json and the tokenizer).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from twbert.training.attention import BACKENDS, attention
from twbert.training.head_loss import linear_cross_entropy


@dataclass
class EncoderConfig:
    vocab_size: int = 151680  # the tokenizer's vocabulary, padded to a multiple of 64
    hidden_size: int = 768
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    intermediate_size: int = 1152  # GeGLU width: Wi projects to 2x this
    global_attn_every_n_layers: int = 3  # layer i is global when i % n == 0
    local_attention: int = 128  # sliding window width of local layers: +-64 tokens
    global_rope_theta: float = 160000.0
    local_rope_theta: float = 10000.0
    max_position_embeddings: int = 8192  # longest sequence; recorded for HF, RoPE has no table
    norm_eps: float = 1e-5
    initializer_range: float = 0.02
    initializer_cutoff_factor: float = 2.0  # truncated normal at +-2 std, as ModernBERT
    decoder_bias: bool = True
    pad_token_id: int | None = None  # special token ids come from the tokenizer
    unk_token_id: int | None = None
    cls_token_id: int | None = None
    sep_token_id: int | None = None
    mask_token_id: int | None = None
    attn_backend: str = "auto"  # auto | fa3 | flash | varlen | varlen_cudnn | sdpa (training/attention.py); not saved to HF

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if self.attn_backend not in ("auto", *BACKENDS):
            raise ValueError(f"attn_backend must be auto or one of {', '.join(BACKENDS)}, got {self.attn_backend!r}")
        if self.local_attention % 2:
            raise ValueError(f"local_attention must be even (a +-window), got {self.local_attention}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def is_global(self, layer_id: int) -> bool:
        return layer_id % self.global_attn_every_n_layers == 0

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model settings {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_hf_config(self) -> dict:
        """config.json for transformers' ModernBertForMaskedLM, readable by transformers 4.48+ and 5.x.

        transformers < 5 reads `global_rope_theta` / `local_rope_theta` and `global_attn_every_n_layers`;
        5.x reads `rope_parameters` and `layer_types`. Both are written and agree.
        """
        layer_types = [
            "full_attention" if self.is_global(i) else "sliding_attention" for i in range(self.num_hidden_layers)
        ]
        return {
            "architectures": ["ModernBertForMaskedLM"],
            "model_type": "modernbert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "hidden_activation": "gelu",
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "initializer_cutoff_factor": self.initializer_cutoff_factor,
            "norm_eps": self.norm_eps,
            "norm_bias": False,
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.cls_token_id,
            "eos_token_id": self.sep_token_id,
            "cls_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
            "global_rope_theta": self.global_rope_theta,
            "local_rope_theta": self.local_rope_theta,
            "rope_parameters": {
                "full_attention": {"rope_type": "default", "rope_theta": self.global_rope_theta},
                "sliding_attention": {"rope_type": "default", "rope_theta": self.local_rope_theta},
            },
            "global_attn_every_n_layers": self.global_attn_every_n_layers,
            "layer_types": layer_types,
            "local_attention": self.local_attention,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "embedding_dropout": 0.0,
            "mlp_bias": False,
            "mlp_dropout": 0.0,
            "decoder_bias": self.decoder_bias,
            "classifier_activation": "gelu",
            "classifier_bias": False,
            "classifier_pooling": "mean",
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
        }


# ----------------------------------------------------------------------------------------------
# Rotary position embeddings, GPT-NeoX style: the head dim's two halves rotate as pairs.


def rope_tables(position_ids: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (T, 1, head_dim), float32, for each token's position in its sequence."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim)
    freqs = position_ids.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # In fp32 even under bf16 autocast: positions up to 8192 lose precision in bf16.
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


# ----------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)

    def forward(self, input_ids):
        return self.norm(self.tok_embeddings(input_ids))


class Attention(nn.Module):
    def __init__(self, config: EncoderConfig, layer_id: int):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.backend = config.attn_backend
        self.is_global = config.is_global(layer_id)
        half = config.local_attention // 2
        self.window = (-1, -1) if self.is_global else (half, half)
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x, rope, cu_seqlens, max_seqlen):
        cos, sin = rope
        q, k, v = self.Wqkv(x).view(-1, 3, self.num_heads, self.head_dim).unbind(1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = attention(q, k, v, cu_seqlens, max_seqlen, self.window, self.backend)
        return self.Wo(y.reshape(x.shape[0], -1))


class MLP(nn.Module):
    """GeGLU: Wi projects to (input, gate); the output is Wo(gelu(input) * gate)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        input, gate = self.Wi(x).chunk(2, dim=-1)
        return self.Wo(F.gelu(input) * gate)


class EncoderLayer(nn.Module):
    def __init__(self, config: EncoderConfig, layer_id: int):
        super().__init__()
        # Layer 0's input is the embedding LayerNorm's output: a second norm would be redundant.
        if layer_id == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.attn = Attention(config, layer_id)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.mlp = MLP(config)

    def forward(self, x, rope, cu_seqlens, max_seqlen):
        x = x + self.attn(self.attn_norm(x), rope, cu_seqlens, max_seqlen)
        return x + self.mlp(self.mlp_norm(x))


class Encoder(nn.Module):
    """Token ids (T,) of packed sequences -> final hidden states (T, hidden_size)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        # Recompute each layer's activations in backward instead of keeping them (train.activation_
        # checkpointing): about 1/6 of the activation memory for ~1/3 more compute (docs/training.md).
        self.checkpoint_layers = False

    def forward(self, input_ids, position_ids, cu_seqlens, max_seqlen):
        c = self.config
        # One cos/sin table per attention kind, shared by all layers of that kind.
        global_rope = rope_tables(position_ids, c.head_dim, c.global_rope_theta)
        local_rope = rope_tables(position_ids, c.head_dim, c.local_rope_theta)
        x = self.embeddings(input_ids)
        recompute = self.checkpoint_layers and torch.is_grad_enabled()
        for layer in self.layers:
            rope = global_rope if layer.attn.is_global else local_rope
            if recompute:
                x = checkpoint(layer, x, rope, cu_seqlens, max_seqlen, use_reentrant=False)
            else:
                x = layer(x, rope, cu_seqlens, max_seqlen)
        return self.final_norm(x)


class PredictionHead(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)

    def forward(self, x):
        return self.norm(F.gelu(self.dense(x)))


class EncoderForMLM(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.model = Encoder(config)
        self.head = PredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.decoder.weight = self.model.embeddings.tok_embeddings.weight  # tied
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """ModernBERT's init: truncated normals; output projections scaled down by depth."""
        c = self.config
        std_in = c.initializer_range
        std_out = c.initializer_range / math.sqrt(2.0 * c.num_hidden_layers)

        def init(weight, std):
            a = c.initializer_cutoff_factor * std
            nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-a, b=a)

        init(self.model.embeddings.tok_embeddings.weight, std_in)  # also the decoder's weight
        for layer in self.model.layers:
            init(layer.attn.Wqkv.weight, std_in)
            init(layer.attn.Wo.weight, std_out)
            init(layer.mlp.Wi.weight, std_in)
            init(layer.mlp.Wo.weight, std_out)
        init(self.head.dense.weight, std_out)
        if self.decoder.bias is not None:
            nn.init.zeros_(self.decoder.bias)
        for m in self.modules():
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)

    def forward(self, input_ids, position_ids, cu_seqlens, max_seqlen, labels=None, masked_positions=None,
                masked_targets=None) -> dict:
        """Without labels: dict(logits) for every token, (T, vocab).

        With the masked tokens, as `masked_positions` (int64 indices into the T tokens) and
        `masked_targets` (their labels; -100 rows are padding and ignored), or as `labels` (-100 where
        nothing is predicted; finding the positions costs a GPU sync, so the trainer sends indices):
        dict(loss, loss_sum, num_masked) and no logits. The head runs on the masked rows only (sparse
        prediction), and the decoder with its cross-entropy in chunks (training/head_loss.py), so no
        (masked x vocab) logits are ever held whole. `loss` is the mean cross-entropy over the real
        masked tokens (0 when there are none), `loss_sum` their sum.
        """
        hidden = self.model(input_ids, position_ids, cu_seqlens, max_seqlen)
        if labels is None and masked_positions is None:
            return {"logits": self.decoder(self.head(hidden))}
        if masked_positions is None:
            masked_positions = (labels != -100).nonzero().squeeze(1)
            masked_targets = labels.index_select(0, masked_positions)
        x = self.head(hidden.index_select(0, masked_positions))
        loss_sum = linear_cross_entropy(x, self.decoder.weight, self.decoder.bias, masked_targets)
        num_masked = (masked_targets != -100).sum()
        return {"loss": loss_sum / num_masked.clamp(min=1), "loss_sum": loss_sum, "num_masked": num_masked}

    def num_parameters(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # the tied decoder weight counts once
        if non_embedding:
            n -= self.model.embeddings.tok_embeddings.weight.numel()
        return n

    def attention_context(self, lengths) -> tuple[float, float]:
        """(global, local) attention context per token of packed sequences of `lengths` (a list or a
        CPU tensor, e.g. cu_seqlens[1:] - cu_seqlens[:-1] of the loader's batch: no GPU sync).

        A token of a sequence of length L sees L tokens on global layers and at most
        `local_attention + 1` on local ones, so the token-weighted means are
        sum(L_i^2) / sum(L_i) and sum(L_i * min(L_i, local_attention + 1)) / sum(L_i): the window
        caps each sequence, not the batch average (a long and a short sequence average above the
        window while the short one is far below it).
        """
        lengths = np.asarray(lengths, dtype=np.float64)  # numpy: the trainer's loop runs no torch op on the host
        tokens = float(lengths.sum())
        local = np.minimum(lengths, self.config.local_attention + 1)
        return float((lengths * lengths).sum()) / tokens, float((lengths * local).sum()) / tokens

    def num_flops_per_token(self, seq_len: float, mask_rate: float = 0.3, local_seq_len: float | None = None) -> float:
        """Training FLOPs (forward + backward) per input token, for MFU.

        `seq_len` is the attention context a token sees on global layers and `local_seq_len` on local
        layers: for packed documents of lengths L_i, pass `attention_context(lengths)`. Without
        `local_seq_len`, local layers see min(seq_len, local_attention + 1), exact when every sequence
        has length `seq_len` (the loader's max_len is an upper bound). The head and decoder run on
        `mask_rate` of the tokens. Counted as 6 x matmul parameters plus 12 x layers x hidden x
        context for QK^T and AV (as nanoGPT/PaLM); norms, GELU, softmax and RoPE are left out.
        """
        c = self.config
        h, i = c.hidden_size, c.intermediate_size
        if local_seq_len is None:
            local_seq_len = min(seq_len, c.local_attention + 1)
        layer_params = 4 * h * h + 3 * h * i  # Wqkv, Wo, Wi (2i), Wo (i)
        flops = 6 * c.num_hidden_layers * layer_params
        for layer in range(c.num_hidden_layers):
            flops += 12 * h * (seq_len if c.is_global(layer) else local_seq_len)
        flops += 6 * (h * h + h * c.vocab_size) * mask_rate
        return float(flops)


def pack(sequences: list[list[int]], device: torch.device | str = "cpu") -> dict:
    """A batch in the loader's format from token-id lists (for evaluation, tests, benchmarks)."""
    lengths = [len(s) for s in sequences]
    if not lengths or min(lengths) == 0:
        raise ValueError("pack() needs at least one sequence and no empty sequence")
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.tensor(lengths).cumsum(0)
    return {
        "input_ids": torch.tensor([t for s in sequences for t in s], dtype=torch.long, device=device),
        "position_ids": torch.cat([torch.arange(n) for n in lengths]).to(device),
        "cu_seqlens": cu.to(device),
        "max_seqlen": max(lengths),
        "num_tokens": sum(lengths),
    }

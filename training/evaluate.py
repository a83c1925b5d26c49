"""Pseudo-perplexity and MLM accuracy of a masked LM on held-out text.

Pseudo-log-likelihood (Salazar et al. 2020, "Masked Language Model Scoring"): every token of a text
is masked in turn, one copy of the text per token, and the model scores the original token:

    PLL(text) = sum_i log p(w_i | text with w_i masked)
    PPPL      = exp(-sum over texts of PLL / number of scored tokens)

MLM accuracy is the share of those masked tokens the model ranks first. Special tokens ([CLS],
[SEP]) are never masked or scored. The copies of all texts are batched together, longest texts
first, so that a batch holds copies of similar length and padding stays small.

Any Hugging Face masked LM directory works (AutoModelForMaskedLM + AutoTokenizer), so a twbert
model and a bert-base-chinese-style baseline are scored the same way. A twbert run or checkpoint is
exported to a temporary HF directory first. PPPL is per token of each model's own tokenizer: compare
models with different tokenizers on the same texts with that in mind.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import torch


class EvalError(Exception):
    """Bad model directory or text file; the message says what to fix."""


def read_texts(path: str | Path) -> tuple[list[str], dict]:
    """Non-blank lines of a UTF-8 file (one text per line), and how many lines were read/skipped."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: no such file (expected one text per line)")
    texts, read, blank = [], 0, 0
    with open(path, encoding="utf-8") as f:
        for _lineno, line in enumerate(f, 1):
            read += 1
            text = line.rstrip("\n").rstrip("\r")
            if not text.strip():
                blank += 1
                continue
            texts.append(text)
    if not texts:
        raise EvalError(f"{path}: no non-blank line to evaluate ({read} lines read)")
    return texts, {"lines_read": read, "lines_blank": blank}


def eval_attention(config) -> dict:
    """from_pretrained kwargs choosing the attention for evaluation.

    HF ModernBERT picks flash_attention_2 by itself when flash-attn is installed (CUDA). Under it,
    sparse prediction with labels fails: HF re-pads the masked-only logits with the indices of every
    token (a shape error, transformers 4.57). Evaluation keeps sparse prediction and asks for SDPA
    instead: a copy has one scored position, so the sparse head projects one row onto the vocabulary
    where a dense head would project every token (B x L x V logits: the vocabulary projection costs
    about as much as the whole encoder at a 150k vocabulary, and the fp32 logits of a 32 x 512 batch
    take ~10 GB); the padding SDPA computes stays small because copies are batched longest first,
    with texts of similar length together. SDPA also runs in the model's fp32, where HF's FA2 path
    casts to bf16. Other architectures keep transformers' default.
    """
    return {"attn_implementation": "sdpa"} if getattr(config, "model_type", None) == "modernbert" else {}


def is_hf_model_dir(path: str | Path) -> bool:
    """True for a Hugging Face model directory: a config.json naming its `model_type`.

    A twbert run also holds a config.json (the trainer's settings), which transformers cannot read.
    """
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "model_type" in data


def resolve_model_dir(model_path: str | Path, workdir: str | Path | None = None) -> Path:
    """An HF model directory for `model_path`: itself, or its twbert run/checkpoint exported to `workdir`."""
    path = Path(model_path)
    if is_hf_model_dir(path):
        return path
    from twbert.training.export import ExportError, export_checkpoint

    if workdir is None:
        raise EvalError(f"{path} is not a Hugging Face model directory (no config.json with a model_type) "
                        "and no workdir was given to export it to")
    try:
        return export_checkpoint(path, Path(workdir) / "model")
    except ExportError as e:
        raise EvalError(f"{model_path} is neither a Hugging Face model directory (no config.json with a "
                        f"model_type) nor a usable twbert run or checkpoint: {e}") from None


def load_masked_lm(model_path: str | Path, device: torch.device, workdir: str | None = None):
    """(model, tokenizer) from an HF directory, or from a twbert run/checkpoint (exported to `workdir`)."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    path = resolve_model_dir(model_path, workdir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForMaskedLM.from_pretrained(str(path), torch_dtype=torch.float32,
                                                     **eval_attention(AutoConfig.from_pretrained(str(path))))
    except (OSError, ValueError) as e:
        raise EvalError(f"{path}: cannot load a masked LM and its tokenizer: {e}") from None
    if tokenizer.mask_token_id is None:
        raise EvalError(f"{path}: the tokenizer has no mask token")
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def pseudo_perplexity(model, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 512,
                      progress: bool = True) -> dict:
    """Score `texts` by masking each token in turn; returns pppl, mlm_accuracy, tokens and counts."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    mask_id = tokenizer.mask_token_id
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    full_lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    truncated = sum(n > max_length for n in full_lengths)

    # One item per (text, scored position), longest texts first.
    order = sorted(range(len(texts)), key=lambda i: -len(enc["input_ids"][i]))
    items = [(i, p) for i in order for p, special in enumerate(enc["special_tokens_mask"][i]) if not special]
    empty = sum(1 for i in range(len(texts)) if not any(s == 0 for s in enc["special_tokens_mask"][i]))

    # ModernBERT's HF head can run on the masked positions only (the vocabulary projection is the
    # big cost); other masked LMs return every position's logits. Not under flash_attention_2, which
    # cannot re-pad sparse logits (see eval_attention; load_masked_lm asks for SDPA, but a caller may
    # pass a model loaded with FA2): there the dense logits are read at the masked positions.
    sparse = hasattr(model, "sparse_prediction") and \
        getattr(model.config, "_attn_implementation", None) != "flash_attention_2"
    if hasattr(model, "sparse_prediction"):
        model.sparse_prediction = sparse
        model.sparse_pred_ignore_index = -100

    nll, correct = 0.0, 0
    for start in tqdm(range(0, len(items), batch_size), desc="pppl", unit="batch", disable=not progress):
        chunk = items[start:start + batch_size]
        width = max(len(enc["input_ids"][i]) for i, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (i, p) in enumerate(chunk):
            seq = enc["input_ids"][i]
            ids[row, :len(seq)] = torch.tensor(seq)
            attn[row, :len(seq)] = 1
            labels[row, p] = seq[p]
            ids[row, p] = mask_id
        ids, attn, labels = ids.to(device), attn.to(device), labels.to(device)
        rows = torch.arange(len(chunk), device=device)
        cols = (labels != -100).float().argmax(dim=1)
        targets = labels[rows, cols]
        if sparse:
            logits = model(input_ids=ids, attention_mask=attn, labels=labels).logits  # (rows, V), row order
        else:
            logits = model(input_ids=ids, attention_mask=attn).logits[rows, cols]
        logp = torch.log_softmax(logits.float(), dim=-1)
        nll -= logp[rows, targets].double().sum().item()
        correct += int((logits.argmax(dim=-1) == targets).sum())
    n = len(items)
    return {
        "pppl": math.exp(nll / n) if n else float("nan"),
        "mlm_accuracy": correct / n if n else float("nan"),
        "tokens": n,
        "texts": len(texts) - empty,
        "texts_without_tokens": empty,
        "texts_truncated": truncated,
        "max_length": max_length,
    }


def evaluate(model_path: str | Path, texts_path: str | Path, batch_size: int = 32, max_length: int = 512,
             device: str = "auto", limit: int | None = None, progress: bool = True) -> dict:
    """`twbert eval pppl`: one result dict (see pseudo_perplexity) plus what was read."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    texts, counts = read_texts(texts_path)
    if limit is not None:
        counts["lines_over_limit"] = max(0, len(texts) - limit)
        texts = texts[:limit]
    with tempfile.TemporaryDirectory(prefix="twbert-eval-") as work:
        model, tokenizer = load_masked_lm(model_path, torch.device(device), work)
        result = pseudo_perplexity(model, tokenizer, texts, batch_size, max_length, progress)
    return {**result, **counts, "model": str(model_path), "texts_file": str(texts_path)}

"""Tiny models and tokenizers shared by the model, export and eval tests."""

from __future__ import annotations

import torch

from twbert.training.model import EncoderForMLM

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def char_tokenizer(out_dir, texts):
    """A character-level tokenizer with BERT specials, saved as a transformers tokenizer directory."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted({ch for t in texts for ch in t if not ch.isspace()})
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    fast.save_pretrained(str(out_dir))
    return fast


def perturbed_model(config, seed=0) -> EncoderForMLM:
    """A fresh model with non-trivial norms and decoder bias, as after training."""
    torch.manual_seed(seed)
    m = EncoderForMLM(config).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name or name == "decoder.bias":
                p.add_(0.1 * torch.randn_like(p))
    return m

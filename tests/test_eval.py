"""Pseudo-perplexity: batched scoring equals masking one token at a time; a trained model scores better."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _models import SPECIALS, char_tokenizer

from twbert.cli import main
from twbert.training import checkpoint as ckpt
from twbert.training.evaluate import load_masked_lm, pseudo_perplexity
from twbert.training.export import export
from twbert.training.model import EncoderConfig, EncoderForMLM, pack

transformers = pytest.importorskip("transformers")

TEXTS = [
    "今天的捷運比平常擁擠，很多人趕著上班。",
    "夜市裡的鹽酥雞和珍珠奶茶最受歡迎。",
    "颱風明天登陸，學校宣布停課一天。",
    "阿里山的日出讓遊客讚嘆不已。",
    "這本小說描寫一個家族三代的故事。",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def build_tokenizer(out_dir):
    return char_tokenizer(out_dir, TEXTS)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tokenizer, an untrained and a trained (on TEXTS) tiny twbert model, both exported."""
    root = tmp_path_factory.mktemp("eval")
    tok = build_tokenizer(root / "tokenizer")
    config = EncoderConfig(vocab_size=64 * -(-len(tok) // 64), hidden_size=64, num_hidden_layers=3,
                           num_attention_heads=4, intermediate_size=96, local_attention=8, pad_token_id=0,
                           unk_token_id=1, cls_token_id=2, sep_token_id=3, mask_token_id=4)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    untrained = EncoderForMLM(config).eval()
    trained = EncoderForMLM(config)
    trained.load_state_dict(untrained.state_dict())
    batch = pack([tok(t)["input_ids"] for t in TEXTS])
    ids = batch["input_ids"]
    special = ids < len(SPECIALS)
    opt = torch.optim.AdamW(trained.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        masked = (torch.rand(len(ids), generator=g) < 0.3) & ~special
        out = trained(torch.where(masked, 4, ids), batch["position_ids"], batch["cu_seqlens"], batch["max_seqlen"],
                      labels=torch.where(masked, ids, -100))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    trained.eval()
    texts = root / "texts.txt"
    texts.write_text("\n".join(TEXTS[:2] + ["", "   "] + TEXTS[2:]) + "\n", encoding="utf-8")
    return {
        "root": root,
        "tok": tok,
        "texts": texts,
        "untrained": (untrained, export(untrained.state_dict(), config, root / "untrained", root / "tokenizer")),
        "trained": (trained, export(trained.state_dict(), config, root / "trained", root / "tokenizer")),
        "config": config,
    }


@torch.no_grad()
def one_at_a_time(model, tok, texts):
    """Reference PPPL with twbert's own varlen forward: one masked copy, one forward pass."""
    nll, correct, n = 0.0, 0, 0
    for text in texts:
        seq = tok(text)["input_ids"]
        for p in range(1, len(seq) - 1):
            masked = list(seq)
            masked[p] = tok.mask_token_id
            b = pack([masked])
            logits = model(b["input_ids"], b["position_ids"], b["cu_seqlens"], b["max_seqlen"])["logits"][p]
            nll -= torch.log_softmax(logits.double(), -1)[seq[p]].item()
            correct += int(logits.argmax().item() == seq[p])
            n += 1
    return math.exp(nll / n), correct / n, n


@pytest.mark.parametrize("which", ["untrained", "trained"])
def test_batched_pppl_equals_masking_one_token_at_a_time(setup, which):
    model, out = setup[which]
    hf, tok = load_masked_lm(out, torch.device("cpu"))
    got = pseudo_perplexity(hf, tok, TEXTS, batch_size=7, progress=False)
    pppl, acc, n = one_at_a_time(model, setup["tok"], TEXTS)
    assert got["tokens"] == n == sum(len(t) for t in TEXTS)
    assert got["pppl"] == pytest.approx(pppl, rel=1e-4)
    assert got["mlm_accuracy"] == pytest.approx(acc)
    assert got["texts"] == len(TEXTS) and got["texts_truncated"] == 0


def test_training_lowers_pppl(setup):
    results = {}
    for which in ("untrained", "trained"):
        hf, tok = load_masked_lm(setup[which][1], torch.device("cpu"))
        results[which] = pseudo_perplexity(hf, tok, TEXTS, progress=False)
    vocab = len(setup["tok"])
    assert results["untrained"]["pppl"] > vocab / 4  # near-uniform guesses
    assert results["trained"]["pppl"] < results["untrained"]["pppl"] / 4
    assert results["trained"]["mlm_accuracy"] > results["untrained"]["mlm_accuracy"] + 0.2


def test_any_hf_masked_lm(setup, tmp_path):
    """A BERT-architecture masked LM (dense logits path) scores the same as one copy at a time."""
    tok = setup["tok"]
    torch.manual_seed(0)
    bert = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0)).eval()
    bert.save_pretrained(str(tmp_path / "bert"))
    tok.save_pretrained(str(tmp_path / "bert"))
    hf, hf_tok = load_masked_lm(tmp_path / "bert", torch.device("cpu"))
    got = pseudo_perplexity(hf, hf_tok, TEXTS[:3], batch_size=5, progress=False)
    nll, n = 0.0, 0
    with torch.no_grad():
        for text in TEXTS[:3]:
            seq = tok(text)["input_ids"]
            for p in range(1, len(seq) - 1):
                masked = torch.tensor([seq])
                masked[0, p] = tok.mask_token_id
                nll -= torch.log_softmax(bert(input_ids=masked).logits[0, p].double(), -1)[seq[p]].item()
                n += 1
    assert got["tokens"] == n
    assert got["pppl"] == pytest.approx(math.exp(nll / n), rel=1e-4)


def test_truncation_is_counted(setup):
    hf, tok = load_masked_lm(setup["untrained"][1], torch.device("cpu"))
    got = pseudo_perplexity(hf, tok, TEXTS, max_length=12, progress=False)
    assert got["tokens"] == 10 * len(TEXTS) and got["texts_truncated"] == len(TEXTS)


def test_cli_prints_one_json_object(setup, capsys):
    assert main(["eval", "pppl", str(setup["trained"][1]), str(setup["texts"]), "--no-progress",
                 "--batch-size", "16"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"pppl", "mlm_accuracy", "tokens"} <= set(result)
    assert result["tokens"] == sum(len(t) for t in TEXTS)
    assert result["lines_read"] == len(TEXTS) + 2 and result["lines_blank"] == 2
    assert result["texts"] == len(TEXTS)

    assert main(["eval", "pppl", str(setup["trained"][1]), str(setup["texts"]), "--no-progress",
                 "--limit", "2"]) == 0
    limited = json.loads(capsys.readouterr().out)
    assert limited["texts"] == 2 and limited["lines_over_limit"] == len(TEXTS) - 2

    assert main(["eval", "pppl", str(setup["trained"][1]), str(setup["root"] / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_scores_a_twbert_run_directly(setup, capsys, tmp_path):
    """A run directory is exported on the fly and scores exactly as its export does."""
    data_dir = tmp_path / "shards"
    data_dir.mkdir()
    build_tokenizer(data_dir / "tokenizer")
    c = setup["config"]
    model_cfg = dict(hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                     num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                     local_attention=c.local_attention)
    ckpt.save(tmp_path / "run" / "checkpoints", 5, tensors={"model": setup["trained"][0].state_dict()},
              jsons={"trainer": {"step": 5, "tokens": 0, "config": {"data_dir": str(data_dir), "model": model_cfg}}})
    # The trainer writes its own config.json into the run: it is not a Hugging Face config.
    (tmp_path / "run" / "config.json").write_text(json.dumps({"data_dir": str(data_dir), "model": model_cfg}))
    assert main(["eval", "pppl", str(tmp_path / "run"), str(setup["texts"]), "--no-progress"]) == 0
    from_run = json.loads(capsys.readouterr().out)
    assert main(["eval", "pppl", str(setup["trained"][1]), str(setup["texts"]), "--no-progress"]) == 0
    from_export = json.loads(capsys.readouterr().out)
    assert from_run["pppl"] == pytest.approx(from_export["pppl"], rel=1e-9)
    assert from_run["tokens"] == from_export["tokens"]


def test_modernbert_is_loaded_with_sdpa_where_hf_would_pick_flash_attention(setup, monkeypatch):
    """With flash-attn installed, HF ModernBERT picks flash_attention_2 by itself, under which its
    sparse head with labels fails; evaluation asks for SDPA (and keeps the sparse head)."""
    base = transformers.ModernBertPreTrainedModel
    if not hasattr(base, "_flash_attn_2_can_dispatch"):
        pytest.skip("this transformers chooses ModernBERT's attention another way")
    # as on a CUDA machine with flash-attn: HF's own choice would be flash_attention_2
    monkeypatch.setattr(base, "_flash_attn_2_can_dispatch", lambda self, is_init_check=False: True)
    hf, _ = load_masked_lm(setup["trained"][1], torch.device("cpu"))
    assert hf.config._attn_implementation == "sdpa"


def test_flash_attention_model_is_scored_without_sparse_prediction(setup):
    """A ModernBERT a caller loaded with flash_attention_2 is scored on its dense logits: HF's sparse
    head re-pads masked-only logits with every token's indices there and fails (stood in for here)."""
    hf, tok = load_masked_lm(setup["trained"][1], torch.device("cpu"))
    expected = pseudo_perplexity(hf, tok, TEXTS, batch_size=7, progress=False)

    class FlashAttentionLike(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.config = type("Config", (), {"_attn_implementation": "flash_attention_2"})()
            self.sparse_prediction = True

        def forward(self, input_ids, attention_mask, labels=None):
            if self.sparse_prediction and labels is not None:
                raise RuntimeError("shape mismatch: sparse logits re-padded with every token's indices")
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    model = FlashAttentionLike(hf)
    got = pseudo_perplexity(model, tok, TEXTS, batch_size=7, progress=False)
    assert model.sparse_prediction is False
    assert got["tokens"] == expected["tokens"]
    assert got["pppl"] == pytest.approx(expected["pppl"], rel=1e-6)
    assert got["mlm_accuracy"] == expected["mlm_accuracy"]

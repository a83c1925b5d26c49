"""Export round trip: twbert weights -> HF directory -> transformers gives the same logits."""

from __future__ import annotations

import json

import pytest
import torch
from _models import char_tokenizer, perturbed_model

from twbert.cli import main
from twbert.training import checkpoint as ckpt
from twbert.training.export import ExportError, export
from twbert.training.model import EncoderConfig, pack

transformers = pytest.importorskip("transformers")

TEXTS = [
    "台北今天下午有雷陣雨，出門記得帶傘。",
    "這家麵店的牛肉麵湯頭濃郁，排隊的人很多。",
    "高鐵從台中到高雄只要一個小時左右。",
    "圖書館週末延長開放到晚上十點。",
]


def tiny_config(vocab_size, **kw):
    base = dict(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                intermediate_size=96, local_attention=8, pad_token_id=0, unk_token_id=1, cls_token_id=2,
                sep_token_id=3, mask_token_id=4)
    return EncoderConfig(**{**base, **kw})


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tokenizer_dir(tmp_path):
    d = tmp_path / "tokenizer"
    char_tokenizer(d, TEXTS)
    return d


def padded(seqs, pad_id=0):
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
    return ids, attn


@pytest.mark.parametrize("attn_impl", ["sdpa", "eager"])
def test_hf_from_pretrained_gives_twbert_logits(tmp_path, tokenizer_dir, attn_impl):
    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = tiny_config(vocab_size=64 * -(-len(tok) // 64))  # padded to 64, as the trainer does
    m = perturbed_model(config)
    out = export(m.state_dict(), config, tmp_path / "hf", tokenizer_dir)

    hf = transformers.AutoModelForMaskedLM.from_pretrained(str(out), attn_implementation=attn_impl).eval()
    assert type(hf).__name__ == "ModernBertForMaskedLM"
    # Texts longer than the local window (8), of different lengths: windows and padding both matter.
    seqs = [tok(t)["input_ids"] for t in TEXTS]
    assert min(map(len, seqs)) > config.local_attention + 2
    with torch.no_grad():
        ours = m(**{k: v for k, v in pack(seqs).items() if k != "num_tokens"})["logits"]
        ids, attn = padded(seqs, tok.pad_token_id)
        batched = hf(input_ids=ids, attention_mask=attn).logits[attn.bool()]
        single = hf(input_ids=ids[:1, : len(seqs[0])]).logits[0]
    assert (ours - batched).abs().max().item() < 1e-4
    assert (ours[: len(seqs[0])] - single).abs().max().item() < 1e-4
    # The export really carries the weights: a differently seeded model disagrees.
    other = perturbed_model(config, seed=1)
    with torch.no_grad():
        theirs = other(**{k: v for k, v in pack(seqs).items() if k != "num_tokens"})["logits"]
    assert (theirs - batched).abs().max().item() > 1e-2


def test_export_directory_contents(tmp_path, tokenizer_dir):
    config = tiny_config(vocab_size=128)
    out = export(perturbed_model(config).state_dict(), config, tmp_path / "hf", tokenizer_dir,
                 provenance={"step": 7})
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["ModernBertForMaskedLM"]
    assert cfg["global_rope_theta"] == 160000.0 and cfg["local_rope_theta"] == 10000.0
    assert cfg["rope_parameters"] == {
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    }
    loaded = transformers.AutoConfig.from_pretrained(str(out))
    if int(transformers.__version__.split(".")[0]) >= 5:  # 5.x reads rope_parameters, drops the old keys
        assert loaded.rope_parameters["full_attention"]["rope_theta"] == 160000.0
        assert loaded.rope_parameters["sliding_attention"]["rope_theta"] == 10000.0
    else:
        assert loaded.global_rope_theta == 160000.0 and loaded.local_rope_theta == 10000.0
    assert loaded.local_attention == 8
    assert (out / "model.safetensors").is_file() and (tokenizer_dir / "tokenizer.json").is_file()
    for f in tokenizer_dir.iterdir():  # every tokenizer file, unchanged
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    assert json.loads((out / "twbert.json").read_text())["step"] == 7
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    source = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert tok(TEXTS[0])["input_ids"] == source(TEXTS[0])["input_ids"]
    assert tok.mask_token_id == 4
    assert not list(tmp_path.glob(".hf.tmp-*"))


def test_export_refuses_bad_input(tmp_path, tokenizer_dir):
    config = tiny_config(vocab_size=128)
    state = perturbed_model(config).state_dict()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export(state, config, tmp_path / "full", tokenizer_dir)
    with pytest.raises(ExportError, match="missing"):
        export({k: v for k, v in state.items() if "layers.1." not in k}, config, tmp_path / "a", tokenizer_dir)
    with pytest.raises(ExportError, match="wrong shape"):
        export(state, tiny_config(vocab_size=192), tmp_path / "b", tokenizer_dir)
    with pytest.raises(ExportError, match="mask_token_id is 9"):
        export(state, tiny_config(vocab_size=128, mask_token_id=9), tmp_path / "c", tokenizer_dir)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_cli_exports_newest_intact_checkpoint(tmp_path, tokenizer_dir, capsys):
    """`twbert export RUN OUT` from real trainer checkpoints; a damaged newer one is skipped."""
    data_dir = tmp_path / "shards"
    data_dir.mkdir()
    tokenizer_dir.rename(data_dir / "tokenizer")
    run = tmp_path / "run"
    model_cfg = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96,
                     local_attention=8)
    good = perturbed_model(tiny_config(vocab_size=128), seed=0)
    newer = perturbed_model(tiny_config(vocab_size=128), seed=1)
    for step, m in ((10, good), (20, newer)):
        ckpt.save(run / "checkpoints", step, tensors={"model": m.state_dict()},
                  jsons={"trainer": {"step": step, "tokens": 1000 * step,
                                     "config": {"data_dir": str(data_dir), "model": model_cfg}}})
    with open(run / "checkpoints" / "step_00000020" / "model.pt", "r+b") as f:  # bit rot
        f.seek(100)
        f.write(b"\x00\x01\x02")

    assert main(["export", str(run), str(tmp_path / "hf")]) == 0
    info = json.loads((tmp_path / "hf" / "twbert.json").read_text())
    assert info["step"] == 10 and info["model_config"]["mask_token_id"] == 4
    captured = capsys.readouterr()
    assert "step_00000010" in captured.out
    assert "skipping checkpoint" in captured.err and "step_00000020" in captured.err
    hf = transformers.AutoModelForMaskedLM.from_pretrained(str(tmp_path / "hf"))
    torch.testing.assert_close(hf.model.layers[1].attn.Wqkv.weight, good.model.layers[1].attn.Wqkv.weight)

    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "hf2")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err

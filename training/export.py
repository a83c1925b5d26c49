"""Export a twbert encoder as a Hugging Face `ModernBertForMaskedLM` directory.

twbert's parameter names and shapes are transformers' (training/model.py), so the export is the
state dict saved as safetensors, a config.json, and the tokenizer the shards were made with:

    OUT/
      config.json              ModernBertConfig: both the transformers-4 rope keys and 5.x's
                               rope_parameters / layer_types
      model.safetensors        fp32 weights; decoder.weight is left out (tied to the embeddings,
                               transformers re-ties it on load, as its own save_pretrained does)
      tokenizer.json, ...      every file of the run's tokenizer directory
      twbert.json              where it came from: checkpoint, step, tokens, the twbert model config

`transformers.AutoModelForMaskedLM.from_pretrained(OUT)` then gives twbert's logits (within 1e-4 in
fp32; tests/test_export.py checks it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch

from twbert.training.model import EncoderConfig, EncoderForMLM

# Wrappers' prefixes: torch.compile's OptimizedModule and DDP's module.
_PREFIXES = ("_orig_mod.", "module.")


class ExportError(Exception):
    """The checkpoint, config or tokenizer cannot be exported; the message says why."""


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in state.items():
        for prefix in _PREFIXES:
            while name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = t
    return out


def tokenizer_specials(tokenizer_dir: Path) -> tuple[dict[str, int], int]:
    """({pad,unk,cls,sep,mask}_token_id, vocabulary size) of the tokenizer in `tokenizer_dir`."""
    from twbert.errors import UsageError
    from twbert.shards.format import SPECIAL_ROLES, read_tokenizer_info

    try:
        info = read_tokenizer_info(tokenizer_dir)
    except UsageError as e:
        raise ExportError(str(e)) from None
    return {f"{r}_token_id": info[r] for r in SPECIAL_ROLES}, info["vocab_size"]


def export(
    state_dict: dict[str, torch.Tensor],
    config: EncoderConfig,
    out_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    provenance: dict | None = None,
) -> Path:
    """Write the HF directory for `state_dict` (an EncoderForMLM's) to `out_dir`; returns it.

    The weights are checked against `config` first; the directory is written beside `out_dir` and
    renamed into place, so an interrupted export leaves nothing that looks complete.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty: remove it or choose another output directory")

    state = clean_state_dict(state_dict)
    expected = {k: tuple(v.shape) for k, v in _meta_model(config).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or unexpected or wrong:
        raise ExportError(
            "the weights do not fit the model config: "
            + "; ".join(
                f"{what} {names[:4]}{' ...' if len(names) > 4 else ''}"
                for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if names
            )
        )

    if tokenizer_dir is not None:
        ids, tok_vocab = tokenizer_specials(Path(tokenizer_dir))
        if tok_vocab > config.vocab_size:
            raise ExportError(
                f"the tokenizer in {tokenizer_dir} has {tok_vocab} tokens but the model only {config.vocab_size}"
            )
        for key, tok_id in ids.items():
            mine = getattr(config, key)
            if mine is not None and tok_id is not None and mine != tok_id:
                raise ExportError(
                    f"{key} is {mine} in the model config but {tok_id} in the tokenizer {tokenizer_dir}: "
                    "this is not the tokenizer the model was trained with"
                )

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if tokenizer_dir is not None:
            for f in sorted(Path(tokenizer_dir).iterdir()):
                if f.is_file() and f.name not in ("config.json", "model.safetensors"):
                    shutil.copy2(f, tmp / f.name)
        (tmp / "config.json").write_text(json.dumps(config.to_hf_config(), indent=2) + "\n", encoding="utf-8")
        # The decoder shares the embedding's storage; safetensors refuses shared tensors, and
        # transformers ties it back from the embedding on load.
        tensors = {
            k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items() if k != "decoder.weight"
        }
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        info = {"model_config": config.to_dict(), **(provenance or {})}
        (tmp / "twbert.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _meta_model(config: EncoderConfig) -> EncoderForMLM:
    """The model's shapes without allocating or initialising its weights."""
    with torch.device("meta"):
        return EncoderForMLM(config)


def load_checkpoint(ckpt_or_run: str | Path, tokenizer_dir: str | Path | None = None):
    """(state_dict, EncoderConfig, tokenizer dir, provenance) of the newest intact checkpoint.

    `ckpt_or_run` is a RUN directory, RUN/checkpoints, or one step_* checkpoint (see
    training/checkpoint.py). The model config is the run's `model:` settings completed, as the
    trainer does, from the tokenizer (special ids) and the weights (vocabulary size). The tokenizer
    is the run's `data_dir`/tokenizer unless `tokenizer_dir` is given.
    """
    from twbert.training import checkpoint as ckpt

    try:  # damaged checkpoints are reported on stderr: `twbert eval` prints its JSON on stdout
        path = ckpt.resolve(ckpt_or_run, lambda msg: print(msg, file=sys.stderr))
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None
    state, trainer = ckpt.load_tensors(path, "model"), ckpt.load_json(path, "trainer")
    state = clean_state_dict(state)
    cfg = trainer.get("config", {})
    if tokenizer_dir is None:
        if not cfg.get("data_dir"):
            raise ExportError(f"{path}/trainer.json names no data_dir: pass the tokenizer directory explicitly")
        from twbert.shards.format import tokenizer_dir as shards_tokenizer

        tokenizer_dir = shards_tokenizer(cfg["data_dir"])
        if not (tokenizer_dir / "tokenizer.json").is_file():
            raise ExportError(
                f"the run's tokenizer {tokenizer_dir} is not there (moved, or a relative path from another "
                "working directory): pass the tokenizer directory explicitly"
            )
    tokenizer_dir = Path(tokenizer_dir)
    if "model_config" in trainer:
        model_cfg = dict(trainer["model_config"])
    else:
        ids, _ = tokenizer_specials(tokenizer_dir)
        emb = state.get("model.embeddings.tok_embeddings.weight")
        if emb is None:
            raise ExportError(f"{path}/model.pt holds no model.embeddings.tok_embeddings.weight: not a twbert model")
        model_cfg = {**ids, **cfg.get("model", {}), "vocab_size": int(emb.shape[0])}
    try:
        config = EncoderConfig.from_dict(model_cfg)
    except (TypeError, ValueError) as e:
        raise ExportError(f"{path}: model config: {e}") from None
    provenance = {
        "checkpoint": str(Path(path).resolve()),
        "step": trainer.get("step"),
        "tokens": trainer.get("tokens"),
    }
    return state, config, tokenizer_dir, provenance


def export_checkpoint(ckpt_or_run: str | Path, out_dir: str | Path, tokenizer_dir: str | Path | None = None) -> Path:
    """`twbert export`: the newest intact checkpoint of a run (or a given checkpoint) -> HF dir."""
    state, config, tok_dir, provenance = load_checkpoint(ckpt_or_run, tokenizer_dir)
    return export(state, config, out_dir, tok_dir, provenance)

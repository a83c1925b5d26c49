"""`twbert export`: a training checkpoint in, a Hugging Face ModernBertForMaskedLM directory out."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint as a Hugging Face ModernBertForMaskedLM directory",
        description="Write the newest intact checkpoint of a run (or the given checkpoint) as a Hugging Face "
        "directory: config.json (ModernBertConfig, readable by transformers 4.48+ and 5.x), "
        "model.safetensors and the tokenizer files, so that "
        "transformers.AutoModelForMaskedLM.from_pretrained(OUT_DIR) loads it. Damaged checkpoints are "
        "reported and skipped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT_OR_RUN",
                   help="a run directory (its newest intact checkpoint is used), RUN/checkpoints, "
                   "or one RUN/checkpoints/step_* directory")
    p.add_argument("out", metavar="OUT_DIR", help="directory to create; must not exist or be empty")
    p.add_argument("--tokenizer", metavar="DIR", default=None,
                   help="tokenizer directory to ship with the model; unset: the run's DATA/shards/tokenizer, "
                   "as recorded in the checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from twbert.errors import UsageError
    from twbert.training.export import ExportError, export_checkpoint

    try:
        out = export_checkpoint(args.checkpoint, args.out, args.tokenizer)
    except ExportError as e:
        raise UsageError(str(e)) from None
    info = json.loads((out / "twbert.json").read_text(encoding="utf-8"))
    print(f"exported {info.get('checkpoint')} (step {info.get('step')}) to {out}")
    return 0

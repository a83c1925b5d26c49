"""`twbert train`: pretrain the encoder on MDS shards, resumably; one process or under torchrun."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="pretrain the encoder on MDS shards (resumable; torchrun for several GPUs)",
        description="Stream the MDS shards that `twbert build` wrote, pack and mask them, and train the "
        "encoder with AdamW and a warmup-stable-decay schedule. Each optimiser step appends one JSON line "
        "to RUN/metrics.jsonl; checkpoints go to RUN/checkpoints/ every checkpoint.every steps, at the end, "
        "and on SIGTERM/SIGINT. Run the same command with --resume after a preemption: the run continues "
        "exactly where its last intact checkpoint stopped. For several GPUs or nodes, launch it with "
        "`torchrun --nproc-per-node N -m twbert.cli train ...`. Every config key and its default is "
        "documented in twbert/defaults/train.yaml; see docs/training.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG.yaml",
                   help="YAML config (e.g. configs/phase1.yaml); keys it omits take their documented "
                   "defaults. Flags override it.")
    p.add_argument("--data", metavar="DIR/shards", default=None,
                   help="the shards directory `twbert build` wrote (holds tokenizer/, meta.json and one MDS "
                   "dataset per source-tier); replaces data_dir:")
    p.add_argument("--out", metavar="RUN", default=None,
                   help="run directory for metrics.jsonl, tensorboard/ and checkpoints/ (replaces out:)")
    p.add_argument("--max-steps", type=int, metavar="N", default=None,
                   help="optimiser steps to train in all (train.max_steps); the lr schedule spans them")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint in RUN/checkpoints/ (damaged ones are "
                   "skipped with a message); starts from step 0 when there is none. Without it, a RUN that "
                   "already holds checkpoints is an error.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twbert import config
    from twbert.errors import UsageError

    overrides: dict = {}
    if args.data is not None:
        overrides["data_dir"] = args.data
    if args.out is not None:
        overrides["out"] = args.out
    if args.max_steps is not None:
        config.set_path(overrides, "train.max_steps", args.max_steps)
    cfg = config.load("train", args.config, overrides)

    from twbert.training.trainer import TrainError, train

    try:
        summary = train(cfg, resume=args.resume)
    except (TrainError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    return 0 if summary["step"] else 1

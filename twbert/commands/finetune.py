"""`twbert finetune`: fine-tune and evaluate an encoder on a downstream task; `twbert finetune table`."""

from __future__ import annotations

import argparse

from twbert.errors import UsageError

TASK_HELP = ("drcd, cmrc2018 (SQuAD JSON); chnsenticorp, thucnews (TSV), tnews (CLUE JSONL); xnli, lcqmc, bq "
             "(TSV), ocnli (CLUE JSONL); span-qa (SQuAD JSON), classify, pair (JSONL or TSV with named columns); "
             "or `table` to tabulate result directories")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune and evaluate on a downstream task (HFL's protocol), or tabulate results",
        description="Fine-tune MODEL (a twbert run, checkpoint or export, or any Hugging Face encoder directory) "
        "with transformers' task head on TASK, for one or more seeds, and write OUT/results.json (per seed dev and "
        "test metrics, mean and max) and OUT/predictions/. Every text field is converted with OpenCC first "
        "(s2twp, as the paper did); answer spans are re-aligned to the converted context and the unalignable "
        "ones counted. Span QA is scored with the CMRC 2018 official algorithm (EM/F1), classification by "
        "accuracy and macro-F1. Per-task defaults (lr, epochs, batch, max length) are HFL's: see "
        "twbert/defaults/finetune.yaml and docs/finetune.md. "
        "`twbert finetune table DIR...` prints a tasks x models table of result directories instead.",
    )
    p.add_argument("task", metavar="TASK", help=TASK_HELP)
    p.add_argument("model", metavar="MODEL", nargs="+",
                   help="model directory (a twbert run, checkpoint or export, or an HF encoder); for `table`: "
                   "one or more OUT directories holding results.json")
    p.add_argument("--train", metavar="FILE", help="training set, in the task's format")
    p.add_argument("--dev", metavar="FILE", help="development set: scored, and every question gets a prediction")
    p.add_argument("--test", metavar="FILE", default=None, help="test set (optional): scored the same way")
    p.add_argument("--out", metavar="DIR", help="output directory; a rerun keeps the seeds already finished there")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (HFL: 10); default 1")
    p.add_argument("--seed", type=int, default=None, help="first seed; the others follow it; default 0")
    p.add_argument("--max-steps", type=int, default=None, help="stop each seed after N optimizer steps (default: epochs)")
    p.add_argument("--epochs", type=float, default=None, help="training epochs (default: the task's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the task's, from HFL)")
    p.add_argument("--batch-size", type=int, default=None, help="examples (QA: windows) per optimizer step")
    p.add_argument("--micro-batch-size", type=int, default=None, help="examples per forward pass (accumulated)")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per input, up to the model's limit (default: the task's)")
    p.add_argument("--doc-stride", type=int, default=None, help="span QA: a window starts every N context tokens (128)")
    p.add_argument("--no-stride", action="store_true",
                   help="span QA: read each context in one window of --max-length tokens (long-context models)")
    p.add_argument("--opencc", metavar="CFG", default=None,
                   help="converter for every text field: s2twp (default, as in the paper), s2tw, mediawiki, "
                        "mediawiki+phrases (the build's settings, docs/pipeline.md), any OpenCC config, or none")
    p.add_argument("--text-column", default="text", help="classify/pair: the text column (JSONL key or TSV header)")
    p.add_argument("--text-b-column", default="text_b", help="pair: the second text's column")
    p.add_argument("--label-column", default="label", help="classify/pair: the label column")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (on stderr)")
    p.add_argument("--markdown", metavar="FILE", default=None, help="table: also write the table as Markdown here")
    p.add_argument("--no-reference", action="store_true", help="table: leave out the published reference rows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "table":
        from twbert.finetune.table import render_table

        terminal, markdown = render_table(args.model, reference_rows=not args.no_reference)
        print(terminal)
        if args.markdown:
            from pathlib import Path

            Path(args.markdown).write_text(markdown + "\n", encoding="utf-8")
        return 0

    from twbert.finetune.run import finetune
    from twbert.finetune.tasks import TASKS, Columns

    if args.task not in TASKS:
        raise UsageError(f"unknown task {args.task!r}: choose one of {', '.join(TASKS)}, or table")
    if len(args.model) != 1:
        raise UsageError(f"one MODEL directory, got {len(args.model)}: {' '.join(args.model)}")
    missing = [f"--{n}" for n in ("train", "dev", "out") if not getattr(args, n)]
    if missing:
        raise UsageError(f"{' and '.join(missing)} required for `twbert finetune {args.task}`")
    cfg = {key: value for key, value in {
        "seeds": args.seeds, "seed": args.seed, "max_steps": args.max_steps, "epochs": args.epochs, "lr": args.lr,
        "batch_size": args.batch_size, "micro_batch_size": args.micro_batch_size, "max_length": args.max_length,
        "doc_stride": args.doc_stride, "opencc": args.opencc, "device": args.device,
    }.items() if value is not None}
    if args.no_stride:
        cfg["stride"] = False
    result = finetune(args.task, args.model[0], args.train, args.dev, args.out, args.test, cfg,
                      Columns(args.text_column, args.text_b_column, args.label_column), progress=not args.no_progress)
    import json

    print(json.dumps({"task": result["task"], "mean": result["mean"], "max": result["max"],
                      "results": f"{args.out}/results.json"}, ensure_ascii=False))
    return 0

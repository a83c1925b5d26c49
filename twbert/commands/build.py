"""`twbert build`: raw dumps in, clean documents (and, with a tokenizer, MDS shards) out."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="clean, score, dedup and shard raw zhwiki / FineWeb2 dumps",
        description="Run the datatrove build: read zhwiki dumps and FineWeb2 parquet, clean and convert "
        "to Taiwan form, filter, scrub PII, score the variant, remove near-duplicates, and (with a "
        "tokenizer) write MDS shards. Kept documents go to OUT/documents/, the funnel to OUT/stats.json. "
        "A rerun with the same OUT skips every task that already completed and whose outputs check out; a "
        "task whose outputs are missing or damaged runs again, and so do the stages after it. One build at "
        "a time per OUT: a second one fails at once, naming the holder of OUT/build.lock. Every config key, "
        "its type and its default is documented in twbert/defaults/build.yaml.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("config", nargs="?", default=None,
                   help="YAML config; keys it omits take their documented defaults. Flags override it.")
    p.add_argument("--wiki", nargs="+", metavar="PATH", default=None,
                   help="zhwiki *-pages-articles*.xml.bz2 files or directories (local or fsspec URL); "
                   "replaces inputs.wiki")
    p.add_argument("--fineweb", nargs="+", metavar="PATH", default=None,
                   help="FineWeb2 cmn_Hani parquet files or directories (local or fsspec URL); "
                   "replaces inputs.fineweb")
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (replaces out:)")
    p.add_argument("--tasks", type=int, default=None,
                   help="datatrove tasks per stage: the unit of parallelism and of resume (executor.tasks)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes running at once; -1 = one per task (executor.workers)")
    p.add_argument("--tokenizer", metavar="DIR_OR_FILE", default=None,
                   help="prepared tokenizer dir or tokenizer.json; also writes MDS shards to OUT/shards/ "
                   "(shards.tokenizer)")
    p.set_defaults(func=run, task_logs="OUT/logs/")


def run(args: argparse.Namespace) -> int:
    from twbert import build, config

    overrides: dict = {}
    if args.wiki is not None:
        config.set_path(overrides, "inputs.wiki", args.wiki)
    if args.fineweb is not None:
        config.set_path(overrides, "inputs.fineweb", args.fineweb)
    if args.out is not None:
        overrides["out"] = args.out
    if args.tasks is not None:
        config.set_path(overrides, "executor.tasks", args.tasks)
    if args.workers is not None:
        config.set_path(overrides, "executor.workers", args.workers)
    if args.tokenizer is not None:
        config.set_path(overrides, "shards.tokenizer", args.tokenizer)
    cfg = config.load("build", args.config, overrides)
    build.run(cfg)
    return 0

"""`twbert dedup`: incremental near-duplicate removal against the documents of earlier runs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dedup",
        help="index a finished run's documents; drop a new run's near-duplicates of them",
        description="Incremental MinHash dedup for continual data collection. `twbert build` already "
        "removes near-duplicates within a run; `dedup index` saves a finished run's signatures "
        "(datasketch LeanMinHash, same shingles and thresholds as the build), and `dedup against` "
        "writes a copy of a new run without the documents that near-duplicate the index. "
        "See docs/dedup.md.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ix = actions.add_parser(
        "index",
        help="build (or extend) a MinHash index of a run's documents",
        description="Sign every document of RUN_DIR/documents/ and save the signatures as an index "
        "directory (meta.json, numpy arrays, ids; no pickle). The MinHash parameters come from the "
        "`dedup:` section of the build config (defaults in twbert/defaults/build.yaml) and are "
        "recorded in the index; later queries use the index's own.",
    )
    ix.add_argument("run_dir", metavar="RUN_DIR",
                    help="a `twbert build` output directory (its documents/ are indexed), or a folder "
                    "of datatrove .jsonl/.jsonl.gz files")
    ix.add_argument("--out", metavar="INDEX", default=None,
                    help="index directory to write (default: RUN_DIR/dedup_index for a run directory; "
                    "for a plain folder of .jsonl files, FOLDER-dedup_index beside it, so the index's own "
                    "files are never read back as documents. Wherever it is, an index directory inside "
                    "a documents folder is skipped when reading documents)")
    ix.add_argument("--append", action="store_true",
                    help="add RUN_DIR as a new segment of an existing INDEX (after `dedup against`, "
                    "append the filtered batch so the next one is checked against it too)")
    ix.add_argument("--config", metavar="YAML", default=None,
                    help="build config whose `dedup:` section (ngram, fold, buckets, hashes_per_bucket, "
                    "threshold, seed) sets the MinHash parameters of a new index")
    ix.set_defaults(func=run_index)

    ag = actions.add_parser(
        "against",
        help="copy a new run without its near-duplicates of an indexed corpus",
        description="Read NEW_RUN/documents/, drop every document whose MinHash matches an indexed "
        "document (LSH candidate with estimated Jaccard >= the index's threshold) and write the rest "
        "to OUT/documents/. OUT/stats.json counts read/kept/dropped (reason near_duplicate); the "
        "dropped documents, with `dup_of` and `dup_jaccard` in metadata, go to "
        "OUT/removed/dedup_against/ (the build's audit-trail layout). Each worker process loads the whole index into memory.",
    )
    ag.add_argument("index", metavar="INDEX", help="index directory written by `twbert dedup index`")
    ag.add_argument("new_run", metavar="NEW_RUN",
                    help="the new run directory (or folder of .jsonl/.jsonl.gz documents) to filter")
    ag.add_argument("--out", metavar="DIR", default=None,
                    help="run directory to write (default: NEW_RUN with the suffix -dedup, beside it)")
    ag.add_argument("--tasks", type=int, default=1,
                    help="datatrove tasks: files are split across them; a rerun skips completed tasks (default: 1)")
    ag.add_argument("--workers", type=int, default=1,
                    help="processes at once; each holds a copy of the index in memory (default: 1)")
    ag.add_argument("--compression", choices=["gzip", "none"], default="gzip",
                    help="compression of the written .jsonl files (default: gzip)")
    ag.set_defaults(func=run_against, task_logs="OUT/logs/dedup_against/")


def run_index(args: argparse.Namespace) -> int:
    from pathlib import Path

    from twbert import config
    from twbert.pipeline.dedup_index import build_index, default_index_dir

    out = Path(args.out) if args.out else default_index_dir(args.run_dir)
    params = config.load("build", args.config)["dedup"] if args.config else None
    counts = build_index(args.run_dir, out, params=params, append=args.append)
    print(f"indexed {counts['indexed']:,} of {counts['read']:,} documents "
          f"({counts['no_shingles']:,} without text to sign) -> {out} "
          f"({counts['index_documents']:,} documents in the index)")
    return 0


def run_against(args: argparse.Namespace) -> int:
    from pathlib import Path

    from twbert.build import guarded
    from twbert.pipeline.dedup_index import dedup_against

    out = Path(args.out) if args.out else Path(str(Path(args.new_run).resolve()) + "-dedup")
    with guarded(out):  # one command per OUT at a time, as for `twbert build`
        stats = dedup_against(args.index, args.new_run, out, tasks=args.tasks, workers=args.workers,
                              compression=None if args.compression == "none" else args.compression)
    row = next(r for r in stats["funnel"] if "MinHash against index" in r["step"])
    dropped = row["dropped"].get("near_duplicate", 0)
    print(f"read {row['read']:,}, kept {row['kept']:,}, dropped {dropped:,} near-duplicates of the index "
          f"-> {out}/documents")
    return 0

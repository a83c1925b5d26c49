"""`twbert inspect`: the data-quality report of a build, on the terminal, as JSON and as one HTML file."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="data-quality report of a build: funnel, removed documents, variants, dedup, lengths, tokens, mask previews",
        description="Read a `twbert build` run directory (stats.json, removed/, documents/, shards/) and report: the "
        "funnel (documents read, kept and dropped per step, with reasons); the documents each step removed "
        "(removed/<stage>/<step>/: counts per reason and seeded samples, checked against the funnel); source, variant and tier mix "
        "before and after, conversions, top domains; near-duplicate clusters and the near-duplicate rate "
        "on a seeded sample; document lengths, chunk lengths against the phase lengths 1024 and 8192, "
        "tokens per source and tier counted in the shards; seeded sample documents with a preview of the "
        "trainer's n-gram whole-word masking. Every figure is cross-checked (kept + dropped == read, tokens "
        "in the shards == tokens reported); the command exits 1 when a check fails. Parts a run lacks "
        "(no removed/, no shards, no dedup, no variant step) are reported as absent. Shards are verified (xxh64) "
        "before they are read; a damaged shard or one declaring a pickle column is refused. See docs/inspect.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", metavar="DIR", help="run directory written by `twbert build --out DIR`")
    p.add_argument("--json", metavar="OUT.json", default=None,
                   help="also write every number as JSON (with --against: {'a': report, 'b': report, "
                   "'differences': [{key, a, b, delta, relative}], 'same'})")
    p.add_argument("--html", metavar="OUT.html", default=None,
                   help="also write one self-contained offline HTML report with the plots embedded")
    p.add_argument("--against", metavar="DIR2", default=None,
                   help="a second run directory: show every number that differs between DIR (A) and DIR2 (B)")
    p.add_argument("--samples", type=int, default=3, metavar="N",
                   help="documents drawn (seeded) to show with a masking preview, and removed documents drawn per step "
                   "and reason; 0 for none")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the document samples (kept and removed), the near-duplicate sample and the masking preview")
    p.add_argument("--dup-sample", type=int, default=1000, metavar="N",
                   help="documents sampled to estimate the near-duplicate rate before and after dedup; each "
                   "estimate also reads the whole folder once (MinHash); 0 skips it")
    p.add_argument("--quiet", action="store_true", help="print only the one-line summary, not the tables")
    p.set_defaults(func=run)


def summary_line(r: dict) -> str:
    """One line for logs and scripts: documents, tokens, duplicates, checks."""
    parts = [r["run"] + ":"]
    after = r["sources"].get("after")
    if after:
        parts.append(f"{after['documents']:,} documents kept")
    if r["shards"].get("present"):
        parts.append(f"{r['shards']['counted']['tokens']:,} tokens in {r['shards']['counted']['chunks']:,} chunks "
                     f"({len(r['shards']['datasets'])} sub-datasets)")
    if r["dedup"].get("build"):
        parts.append(f"{r['dedup']['build']['removed']:,} near-duplicates removed")
    n_bad = sum(not c["ok"] for c in r["checks"])
    parts.append(f"checks: {len(r['checks']) - n_bad}/{len(r['checks'])} pass")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console

    from twbert import inspection
    from twbert.errors import UsageError

    if args.samples < 0 or args.dup_sample < 0:
        raise UsageError("--samples and --dup-sample must be >= 0")
    console = Console()
    a = inspection.inspect_run(args.run, samples=args.samples, seed=args.seed, dup_sample=args.dup_sample)
    b = cmp = None
    if args.against:
        b = inspection.inspect_run(args.against, samples=args.samples, seed=args.seed, dup_sample=args.dup_sample)
        cmp = inspection.compare(a, b)
    if not args.quiet:
        inspection.print_report(a, console, cmp)
    if args.json:
        out = {"a": a, "b": b, "differences": cmp["differences"], "same": cmp["same"]} if cmp is not None else a
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(inspection.render_html(a, cmp, b), encoding="utf-8")
    console.print(summary_line(a), soft_wrap=True)  # one unbroken line, for logs and scripts
    if b is not None:
        console.print(summary_line(b), soft_wrap=True)
    if args.json:
        console.print(f"JSON: {Path(args.json).resolve()}")
    if args.html:
        console.print(f"HTML report: {Path(args.html).resolve()}")
    return 0 if a["ok"] and (b is None or b["ok"]) else 1

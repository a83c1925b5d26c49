"""The zhwiki cleaner (pipeline/wikitext.py) against an earlier revision of itself, on the same pages.

    python benchmarks/bench_wikitext.py PAGES_DIR [--baseline REV] [--generated 300] [--rounds 5]

The baseline is the `pipeline/` package at git revision REV (default: the last one before the
pruning parser), extracted to a temporary folder and imported under another name, so both run
in this process on the same pages. For each page set it checks that the two give byte-identical
text and counts, and prints CPU seconds, pages per CPU-second for each, and the ratio.

Pages: the real zhwiki pages that benchmarks/convert_sources.tsv lists (`.wiki` files of the
`tuning`, `heldout` and `heldout-speed` sets, SPEED_TUNING counted as tuning; not shipped: copy
them into PAGES_DIR), and pages from bench_ingest.py's generator (seed 0 for tuning, seed 1 held
out). Timings alternate the two
renderers page set by page set and keep the best of `--rounds` (the machine may be shared).
`--only new|baseline` renders with one side alone, for instruction counts that load cannot move:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/bench_wikitext.py DIR \
        --only new --sets "held out" --generated 300 --reps 2   # then --reps 0; the difference / renders
"""

from __future__ import annotations

import argparse
import importlib
import io
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "3d6b76d"  # main before the pruning parser (wikiparse.py)
PACKAGE = "_twbert_baseline_pipeline"
# Held out for the converter's figures but profiled while making the cleaner fast: tuning here.
SPEED_TUNING = {"zhconv-rs-wikitext.wiki"}


def load_baseline(rev: str, into: Path):
    """pipeline/ at `rev` as the package PACKAGE (its `twbert.pipeline.` imports pointed at itself)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "pipeline"], capture_output=True, check=False)
    if tar.returncode:
        sys.exit(f"git archive {rev} pipeline failed: {tar.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(into, filter="data")
    pkg = into / PACKAGE
    (into / "pipeline").rename(pkg)
    for f in pkg.glob("*.py"):
        f.write_text(f.read_text(encoding="utf-8").replace("twbert.pipeline.", f"{PACKAGE}."), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module(f"{PACKAGE}.wikitext")


def real_pages(folder: Path) -> dict[str, list[tuple[str, str]]]:
    sets: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "benchmarks" / "convert_sources.tsv").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if line.startswith("#") or len(cols) < 2 or not cols[1].endswith(".wiki"):
            continue
        if cols[0] in ("tuning", "heldout", "heldout-speed"):
            path = folder / cols[1]
            if not path.is_file():
                sys.exit(f"missing {path} (benchmarks/convert_sources.tsv says where it comes from)")
            name = "real, tuning" if cols[0] == "tuning" or cols[1] in SPEED_TUNING else "real, held out"
            sets.setdefault(name, []).append((cols[1], path.read_text(encoding="utf-8")))
    return sets


def generated_pages(n: int, seed: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_ingest

    rng, paras = random.Random(seed), bench_ingest.paragraphs()
    pages = []
    for i in range(n):
        k = rng.randint(2, 5)
        start = rng.randrange(len(paras) - k)
        pages.append(bench_ingest.wikitext(i, paras[start : start + k], rng))
    return pages


def render_all(w, pages: list[str]) -> tuple[list[str], list[dict]]:
    outs, counts = [], []
    for p in pages:
        w.counts = {}
        outs.append(w.render(p))
        counts.append(dict(w.counts))
    return outs, counts


def cpu_seconds(w, pages: list[str]) -> float:
    t = time.process_time()
    for p in pages:
        w.render(p)
    return time.process_time() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="?", help="folder holding the .wiki files of benchmarks/convert_sources.tsv")
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision of the code to compare with (default {BASELINE})")
    ap.add_argument("--generated", type=int, default=300, help="generated pages per set (default 300; 0: none)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds; the best is kept (default 5)")
    ap.add_argument("--reps", type=int, default=5, help="renders of the real page sets per round (default 5)")
    ap.add_argument("--cgroups", help="a pinned conversion-group extract (JSON) for NoteTA's G1=…")
    ap.add_argument("--sets", default="", help="only the page sets whose name contains this (e.g. `held out`)")
    ap.add_argument("--only", choices=("new", "baseline"),
                    help="render the sets with this side alone, --reps times after a warm-up, and print nothing: "
                    "for counting instructions (valgrind --tool=callgrind) at two --reps, whatever the machine's load")
    args = ap.parse_args(argv)

    from twbert.pipeline.cgroups import load_groups
    from twbert.pipeline.wikitext import Wikitext

    sets: dict[str, list[str]] = {}
    if args.pages:
        sets.update({name: [t for _, t in pages] for name, pages in real_pages(Path(args.pages)).items()})
    if args.generated:
        sets["generated, tuning (seed 0)"] = generated_pages(args.generated, 0)
        sets["generated, held out (seed 1)"] = generated_pages(args.generated, 1)
    if not sets:
        ap.error("give PAGES_DIR and/or --generated N")
    sets = {name: pages for name, pages in sets.items() if args.sets in name}
    groups = load_groups(args.cgroups) if args.cgroups else {}

    with tempfile.TemporaryDirectory() as tmp:
        old_mod = load_baseline(args.baseline, Path(tmp))
        new, old = Wikitext(groups=groups), old_mod.Wikitext(groups=groups)
        if args.only:
            w = new if args.only == "new" else old
            for pages in sets.values():
                render_all(w, pages)
                for _ in range(args.reps):
                    render_all(w, pages)
            return
        print(f"baseline: pipeline/ at {args.baseline}; groups: {len(groups)} ({args.cgroups or 'none'})")
        for name, pages in sets.items():
            ours, theirs = render_all(new, pages), render_all(old, pages)  # also warms both up
            diff = [i for i, (a, b) in enumerate(zip(zip(*ours), zip(*theirs))) if a != b]
            if diff:
                sys.exit(f"{name}: {len(diff)} of {len(pages)} pages differ from the baseline (first: page {diff[0]})")
            reps = args.reps if name.startswith("real") else 1
            work = pages * reps
            t_new = t_old = float("inf")
            for _ in range(args.rounds):
                t_new = min(t_new, cpu_seconds(new, work))
                t_old = min(t_old, cpu_seconds(old, work))
            kb = sum(map(len, pages)) / len(pages) / 1e3
            print(f"{name:30s} {len(pages):4d} pages x{reps} (mean {kb:.1f}k chars), output identical; "
                  f"new {len(work) / t_new:7.1f} pages/s per CPU-second ({t_new:.2f} s), "
                  f"baseline {len(work) / t_old:7.1f} ({t_old:.2f} s); ratio {t_old / t_new:.2f}x")


if __name__ == "__main__":
    main()

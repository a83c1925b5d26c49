"""Scale of `twbert build`: per-stage cost at several corpus sizes, and the dedup stages alone at 1M-10M.

    python benchmarks/bench_scale.py build --sizes 2000 6000 20000 --drcd ../shared/data/drcd_test.json
    python benchmarks/bench_scale.py dedup --sizes 1000000 10000000 --pair-tasks 4

`build` writes a web corpus of N documents (FineWeb2 parquet, one file per task) and runs the real
`twbert build --tokenizer` on it (ingest -> quality -> PII -> variant -> dedup -> MDS shards), in a
subprocess. Documents are real text recombined: sentences of the DRCD paragraphs (`--drcd`; without
it, the sample writer's sentence pool) drawn into 1-5k character pages of sites that share a header
and footer (boilerplate: about 40 pages a site), plus `--dup-rate` planted near-duplicates (5-10%
character edits, a Simplified copy, the page republished on another site, reordered paragraphs). The
text is written outside the repository (`--work`). For every stage it prints wall time, CPU seconds
(all tasks), peak RSS of the largest task, docs/s and MB/s per core (text the stage read, per CPU
second), the growth exponent of CPU time in N (least squares on log-log over the sizes), candidate
pairs per document, and the whole path's MB of UTF-8 text per CPU second. The per-task CPU and peak
RSS come from `OUT/logs/<stage>/usage/` (twbert.progress). The tokenizer is trained once on the
smallest build's documents, outside the timing.

`dedup` runs the build's stages from `dedup_pairs` to `dedup_clusters` (all K tasks: pairs, the
large-star / small-star rounds until the clusters settle, survivors) on synthetic inputs: N documents
in 4 signature files, 5% of them near-duplicate copies of another (a quarter of their MinHash
values changed: verified) and 5% related (two thirds changed: candidates that mostly fail
verification). The band files are what datatrove's `MinhashDedupBuckets` writes for such signatures
(chains of equal band values, in band-value order; `--check` compares with datatrove's own at a small
N). Signature rows of documents in no band group are never read, so the signature files are sparse.
It prints per stage peak RSS per task and CPU time per document.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


# --- corpus ------------------------------------------------------------------------------------------

def sentence_pool(drcd: Path | None) -> list[str]:
    if drcd and drcd.is_file():
        data = json.loads(drcd.read_text(encoding="utf-8"))
        text = "".join(p["context"] for a in data["data"] for p in a["paragraphs"])
    else:
        from twbert.sample import TW, recombined

        text = "".join(recombined(TW))
    return [s + "。" for s in re.split(r"[。！？]", text) if len(s) >= 8]


def corpus(n: int, pool: list[str], dup_rate: float, seed: int) -> tuple[list[dict], list[tuple[str, str]]]:
    """n web rows (about dup_rate of them planted copies) and the planted (original, copy) id pairs."""
    from neardups import char_edits, reorder_paragraphs, simplified_copy

    rng = random.Random(seed)
    n_sites = max(1, n // 40)
    sites = [("".join(rng.sample(pool, 2)), "本站內容" + "".join(rng.sample(pool, 2)) + f"版權所有 © 網站{s}")
             for s in range(n_sites)]
    rows, pairs = [], []
    n_orig = int(n * (1 - dup_rate))
    for i in range(n_orig):
        target = rng.randint(1000, 5000)
        paras, size = [], 0
        while size < target:
            p = "".join(rng.sample(pool, rng.randint(2, 6)))
            paras.append(p)
            size += len(p)
        s = rng.randrange(n_sites)
        head, foot = sites[s]
        rows.append({"text": "\n".join([head, *paras, foot]), "url": f"https://site{s}.example.tw/{i}", "id": f"w{i}"})
    for j in range(n - n_orig):
        orig = rows[rng.randrange(n_orig)]
        kind = j % 4
        text = orig["text"]
        if kind == 0:
            text = char_edits(text, rng.uniform(0.05, 0.10), rng)
        elif kind == 1:
            text = simplified_copy(text)
        elif kind == 2:
            head, foot = sites[rng.randrange(n_sites)]
            text = "\n".join([head, *text.split("\n")[1:-1], foot])
        else:
            text = reorder_paragraphs(text, rng)
        rows.append({"text": text, "url": f"https://copy.example.com/{j}", "id": f"d{j}"})
        pairs.append((orig["id"], f"d{j}"))
    rng.shuffle(rows)
    return rows, pairs


# --- build -------------------------------------------------------------------------------------------

def stage_usage(logs: Path) -> list[dict]:
    """Per stage, in run order: tasks, wall, CPU s, peak RSS of the largest task, documents and text read."""
    out = []
    for d in logs.iterdir():
        usage = [json.loads(f.read_text()) for f in sorted((d / "usage").glob("*.json"))]
        if not usage:
            continue
        docs = chars = 0
        for f in (d / "stats").glob("*.json"):
            for step in json.loads(f.read_text(encoding="utf-8")):
                if "READER" in step["name"]:
                    s = step["stats"]
                    v = s.get("documents", s.get("total", 0))
                    docs += v["total"] if isinstance(v, dict) else v
                    if isinstance(s.get("doc_len"), dict):
                        chars += s["doc_len"]["total"]
        out.append({"stage": d.name, "tasks": len(usage), "start": min(u["start"] for u in usage),
                    "wall_s": max(u["end"] for u in usage) - min(u["start"] for u in usage),
                    "cpu_s": sum(u["cpu_s"] for u in usage),
                    "peak_rss_mb": max(u["peak_rss_mb"] or 0 for u in usage), "docs": docs, "chars": chars})
    return sorted(out, key=lambda r: r["start"])


def stat_total(logs: Path, stage: str, key: str) -> int:
    total = 0
    for f in (logs / stage / "stats").glob("*.json"):
        for step in json.loads(f.read_text(encoding="utf-8")):
            v = step["stats"].get(key)
            if v is not None:
                total += v["total"] if isinstance(v, dict) else v
    return total


def du(folder: Path) -> float:
    """MB under a folder."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6 if folder.exists() else 0.0


def kept_ids(documents: Path) -> set[str]:
    ids = set()
    for p in documents.rglob("*.jsonl.gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            ids |= {json.loads(line)["id"] for line in f}
    return ids


def run_build(args) -> None:
    from twbert.dumps import write_fineweb_parquet

    pool = sentence_pool(args.drcd)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = Path(args.tokenizer) if args.tokenizer else None
    results = []
    for n in sorted(args.sizes):
        rows, pairs = corpus(n, pool, args.dup_rate, args.seed)
        mb = sum(len(r["text"].encode("utf-8")) for r in rows) / 1e6
        bytes_per_char = mb * 1e6 / sum(len(r["text"]) for r in rows)
        raw = work / f"raw-{n}"
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir()
        for t in range(args.tasks):
            write_fineweb_parquet(raw / f"part-{t:03d}.parquet", rows[t :: args.tasks])
        out = work / f"build-{n}"
        shutil.rmtree(out, ignore_errors=True)
        if tokenizer is None:  # trained once, on a dedup-free build of the smallest corpus: not timed
            tok_run = work / "tokenizer-docs"
            shutil.rmtree(tok_run, ignore_errors=True)
            cfg = work / "nodedup.yaml"
            cfg.write_text("dedup:\n  enabled: false\n", encoding="utf-8")
            subprocess.run([sys.executable, "-m", "twbert", "build", str(cfg), "--fineweb", str(raw), "--out", str(tok_run),
                            "--tasks", str(args.tasks), "--workers", str(args.workers)], check=True, stdout=subprocess.DEVNULL)
            tokenizer = work / "tokenizer"
            subprocess.run([sys.executable, "-m", "twbert", "tokenizer", "train", "--input", str(tok_run / "documents"),
                            "--vocab-size", "8000", "--out", str(tokenizer)], check=True, stdout=subprocess.DEVNULL)
        cmd = [sys.executable, "-m", "twbert", "build", "--fineweb", str(raw), "--out", str(out),
               "--tasks", str(args.tasks), "--workers", str(args.workers), "--tokenizer", str(tokenizer)]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if not args.verbose else None)
        wall = time.time() - t0
        stages = stage_usage(out / "logs")
        logs = out / "logs"
        kept = kept_ids(out / "documents")
        ingested = kept_ids(out / "work" / "ingest")
        reach = [(a, b) for a, b in pairs if a in ingested and b in ingested]
        found = sum(1 for a, b in reach if len({a, b} & kept) == 1)
        distinct = [i for i in ingested if i.startswith("w")]
        planted_orig = {a for a, _ in pairs}
        fp = sum(1 for i in distinct if i not in kept and i not in planted_orig)
        sizes = {str(d.relative_to(out)): du(d) for d in [out / "work" / "ingest", out / "work" / "dedup" / "signatures",
                                                          out / "work" / "dedup" / "buckets", out / "work" / "dedup" / "pairs",
                                                          out / "work" / "dedup" / "clusters", out / "documents", out / "shards"]}
        res = {"n": n, "mb": mb, "bytes_per_char": bytes_per_char, "wall_s": wall, "disk_mb": sizes, "stages": stages,
               "candidate_pairs": stat_total(logs, "dedup_clusters", "candidate_pairs"),
               "verified_pairs": stat_total(logs, "dedup_clusters", "verified_pairs"),
               "ingested": len(ingested), "recall": found / max(1, len(reach)), "planted": len(reach),
               "false_positives": fp, "singles": len([i for i in distinct if i not in planted_orig])}
        results.append(res)
        print_build(res)
        if args.keep == 0:
            shutil.rmtree(raw)
    if len(results) > 1:
        print_growth(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


def print_build(r: dict) -> None:
    cpu = sum(s["cpu_s"] for s in r["stages"])
    print(f"\n== N = {r['n']:,} web documents, {r['mb']:.1f} MB of UTF-8 text; build wall {r['wall_s']:.0f} s, "
          f"CPU {cpu:.0f} s -> {r['mb'] / cpu:.3f} MB of text per CPU-second (whole web path)")
    print(f"{'stage':<18}{'tasks':>6}{'wall s':>9}{'CPU s':>9}{'peak RSS MB/task':>18}{'docs/s/core':>13}{'MB/s/core':>11}")
    for s in r["stages"]:
        dps = f"{s['docs'] / s['cpu_s']:,.0f}" if s["docs"] and s["cpu_s"] else "-"
        mbs = f"{s['chars'] * r['bytes_per_char'] / 1e6 / s['cpu_s']:.2f}" if s["chars"] and s["cpu_s"] else "-"
        print(f"{s['stage']:<18}{s['tasks']:>6}{s['wall_s']:>9.1f}{s['cpu_s']:>9.1f}{s['peak_rss_mb']:>18.0f}{dps:>13}{mbs:>11}")
    print(f"dedup: {r['candidate_pairs'] / r['ingested']:.2f} candidate pairs and {r['verified_pairs'] / r['ingested']:.3f} "
          f"verified pairs per document; recall {r['recall']:.3f} on {r['planted']} planted pairs; "
          f"false positives {r['false_positives']} of {r['singles']} distinct documents")
    print("disk, MB per 1,000 documents: " + ", ".join(f"{k} {1000 * v / r['n']:.2f}" for k, v in r["disk_mb"].items()))


def growth(xs, ys) -> float:
    lx, ly = np.log(xs), np.log(np.maximum(ys, 1e-9))
    return float(np.polyfit(lx, ly, 1)[0])


def print_growth(results: list[dict]) -> None:
    ns = [r["n"] for r in results]
    print(f"\n== growth exponent of CPU time in N over N = {', '.join(f'{n:,}' for n in ns)} (1.0 = linear)")
    names = [s["stage"] for s in results[-1]["stages"]]
    for name in names:
        cpu = [next((s["cpu_s"] for s in r["stages"] if s["stage"] == name), float("nan")) for r in results]
        print(f"{name:<18}{growth(ns, cpu):>6.2f}   CPU s: {', '.join(f'{c:.1f}' for c in cpu)}")
    total = [sum(s["cpu_s"] for s in r["stages"]) for r in results]
    print(f"{'whole build':<18}{growth(ns, total):>6.2f}   CPU s: {', '.join(f'{c:.1f}' for c in total)}")
    cand = [r["candidate_pairs"] / r["ingested"] for r in results]
    print(f"candidate pairs per document: {', '.join(f'{c:.2f}' for c in cand)}")


# --- dedup stages alone, synthetic -------------------------------------------------------------------

def _bands() -> tuple[int, int]:
    from twbert.config import defaults

    d = defaults("build")["dedup"]
    return int(d["buckets"]), int(d["hashes_per_bucket"])


B, R = _bands()  # the default config's bands: the stages run with it
W = B * R
FILES = 4


def synth_dedup_inputs(n: int, folder: Path, seed: int = 0) -> dict:
    """Signature files (sparse) and datatrove-format band files for n synthetic documents."""
    from twbert.pipeline.dedup import META_DTYPE

    rng = np.random.default_rng(seed)
    per = -(-n // FILES)
    sigdir, bucketdir = folder / "signatures" / "docsigs", folder / "buckets"
    sigdir.mkdir(parents=True), bucketdir.mkdir(parents=True)
    n_dup, n_rel = int(n * 0.05), int(n * 0.05)
    copies = rng.choice(n, n_dup + n_rel, replace=False)
    copies.sort()
    bases = rng.integers(0, n, len(copies))
    ok = ~np.isin(bases, copies)  # copies of originals only: a copy of a copy would chain clusters
    copies, bases = copies[ok], bases[ok]
    change = np.where(rng.random(len(copies)) < n_dup / (n_dup + n_rel), 0.25, 2 / 3)
    involved = np.unique(np.concatenate([copies, bases]))
    sig = {int(d): rng.integers(0, 2**61 - 1, W, dtype=np.uint64) for d in involved.tolist()}
    for c, b, ch in zip(copies.tolist(), bases.tolist(), change.tolist()):
        s = sig[b].copy()
        pos = rng.random(W) < ch
        s[pos] = rng.integers(0, 2**61 - 1, int(pos.sum()), dtype=np.uint64)
        sig[c] = s
    for f in range(FILES):
        lo, hi = f * per, min(n, (f + 1) * per)
        with open(sigdir / f"{f:05d}.sig", "wb") as out:
            out.truncate((hi - lo) * W * 8)
            for d in involved[(involved >= lo) & (involved < hi)].tolist():
                out.seek((d - lo) * W * 8)
                out.write(sig[d].astype("<u8").tobytes())
        meta = np.zeros(hi - lo, dtype=META_DTYPE)
        meta["tier"] = 3
        meta["length"] = rng.integers(1000, 5000, hi - lo)
        meta["idhash"] = rng.integers(0, 2**63, hi - lo, dtype=np.uint64)
        meta.tofile(sigdir / f"{f:05d}.meta")
    docs = np.array(sorted(sig), dtype=np.int64)
    allsig = np.stack([sig[d] for d in docs.tolist()])
    task, idx = docs // per, docs % per
    records = 0
    for b in range(B):
        band = allsig[:, b * R : (b + 1) * R]
        order = np.lexsort((idx, task, *band.T[::-1]))
        band, t, i = band[order], task[order], idx[order]
        same = (band[1:] == band[:-1]).all(axis=1)
        rec = np.stack([t[:-1][same], i[:-1][same], t[1:][same], i[1:][same]], 1).astype("<u4")
        rec.tofile(bucketdir / f"{b:05d}_00.dups")
        records += len(rec)
    return {"documents": n, "band_records": records}


def check_against_datatrove(folder: Path, n: int = 20000) -> None:
    """The emulated band files equal datatrove's MinhashDedupBuckets output for the same signatures."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

    from twbert.config import defaults
    from twbert.pipeline.dedup import minhash_config

    synth_dedup_inputs(n, folder)
    per = -(-n // FILES)
    rec_dtype = np.dtype([("sig", "<u8", (R,)), ("doc", "<u4")])
    for f in range(FILES):
        rows = min(n, (f + 1) * per) - f * per
        sigs = np.fromfile(folder / "signatures" / "docsigs" / f"{f:05d}.sig", dtype="<u8").reshape(rows, W)
        filled = np.flatnonzero(sigs.any(axis=1))
        # Documents in no group get unique random values: no band collides with them.
        rng = np.random.default_rng(1000 + f)  # not the generator seed: no value may repeat
        empty = np.setdiff1d(np.arange(rows), filled)
        sigs[empty] = rng.integers(0, 2**61 - 1, (len(empty), W), dtype=np.uint64)
        for b in range(B):
            rec = np.empty(rows, dtype=rec_dtype)
            rec["sig"], rec["doc"] = sigs[:, b * R : (b + 1) * R], np.arange(rows)
            rec = rec[np.lexsort((rec["doc"], *rec["sig"].T[::-1]))]  # sorted as the signature step leaves them
            (folder / "signatures" / f"bucket_{b:03d}").mkdir(exist_ok=True)
            rec.tofile(folder / "signatures" / f"bucket_{b:03d}" / f"{f:05d}.minhash.sig")
    mh = minhash_config(defaults("build")["dedup"])
    LocalPipelineExecutor([MinhashDedupBuckets(str(folder / "signatures"), str(folder / "dt_buckets"), config=mh)],
                          tasks=B, workers=1, logging_dir=str(folder / "dt_logs")).run()
    for b in range(B):
        ours = (folder / "buckets" / f"{b:05d}_00.dups").read_bytes()
        theirs = (folder / "dt_buckets" / f"{b:05d}_00.dups").read_bytes()
        assert ours == theirs, f"band {b}: emulated .dups differ from datatrove's"
    print(f"check: emulated band files == datatrove MinhashDedupBuckets output ({n:,} documents, {B} bands)")


def dedup_plan(folder: Path, tasks: int, memory_gb: float | None = None, block_pairs: int | None = None) -> list:
    """The build's dedup stages from dedup_pairs to dedup_clusters, on the synthetic inputs in `folder`."""
    from twbert.config import defaults
    from twbert.pipeline.dedup import stages

    cfg = defaults("build")
    cfg["executor"]["tasks"] = cfg["dedup"]["pair_tasks"] = tasks
    if memory_gb:
        cfg["dedup"]["cluster_memory_gb"] = memory_gb
    if block_pairs:
        cfg["dedup"]["block_pairs"] = block_pairs
    plan = stages(cfg, folder / "documents_in", folder / "documents", folder)
    names = [s.name for s in plan]
    return plan[names.index("dedup_pairs") : names.index("dedup_clusters") + 1]


def run_stage(folder: Path, name: str, tasks: int, workers: int, memory_gb: float, block_pairs: int) -> None:
    from twbert.progress import QuietLocalExecutor

    stage = next(s for s in dedup_plan(folder, tasks, memory_gb, block_pairs) if s.name == name)
    if stage.needed is None or stage.needed():
        QuietLocalExecutor(stage.pipeline, tasks=tasks, workers=workers, logging_dir=str(folder / "logs" / name)).run()


def run_dedup(args) -> None:
    work = Path(args.work)
    if args.check:
        shutil.rmtree(work / "check", ignore_errors=True)
        check_against_datatrove(work / "check")
        shutil.rmtree(work / "check")
    rows = []
    for n in sorted(args.sizes):
        folder = work / f"synth-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.time()
        info = synth_dedup_inputs(n, folder)
        print(f"\n== N = {n:,} synthetic documents: inputs written in {time.time() - t0:.0f} s "
              f"({info['band_records']:,} band-file records)")
        usage, outputs = {}, {}
        for budget in args.cluster_memory_gb or [0.0]:
            # the pairs once; the star rounds and dedup_clusters again for each budget
            for d in [folder / "components", folder / "clusters", *(folder / "logs").glob("dedup_*_star_*"),
                      folder / "logs" / "dedup_clusters"]:
                shutil.rmtree(d, ignore_errors=True)
            for stage in dedup_plan(folder, args.pair_tasks):  # each in a fresh process: the generator's memory is not the task's
                if stage.name == "dedup_pairs" and "dedup_pairs" in usage:
                    continue
                subprocess.run([sys.executable, __file__, "_stage", str(folder), stage.name, str(args.pair_tasks),
                                str(args.workers), str(budget), str(args.block_pairs or 0)], check=True)
            outputs[budget] = {p.name: p.read_bytes() for p in sorted((folder / "clusters").glob("*-*.*"))}
            tag = f" @{budget:g} GB" if budget else ""
            for s_ in stage_usage(folder / "logs"):
                if s_["stage"] != "dedup_pairs" or "dedup_pairs" not in usage:
                    usage[s_["stage"] + ("" if s_["stage"] == "dedup_pairs" else tag)] = s_
        cand = stat_total(folder / "logs", "dedup_clusters", "candidate_pairs")
        ver = stat_total(folder / "logs", "dedup_clusters", "verified_pairs")
        removed = stat_total(folder / "logs", "dedup_clusters", "to_remove")
        rounds = stat_total(folder / "logs", "dedup_clusters", "cc_rounds")
        print(f"{'stage':<30}{'tasks':>6}{'CPU s':>9}{'µs/doc':>9}{'peak RSS MB/task':>18}")
        for name, u in usage.items():
            print(f"{name:<30}{u['tasks']:>6}{u['cpu_s']:>9.1f}{1e6 * u['cpu_s'] / n:>9.2f}{u['peak_rss_mb']:>18.0f}")
        print(f"candidate pairs {cand:,} ({cand / n:.3f}/doc), verified {ver:,}, to remove {removed:,}; "
              f"clusters settled in {rounds} large-star round(s)")
        if len(outputs) > 1:
            same = all(o == next(iter(outputs.values())) for o in outputs.values())
            print(f"dedup_clusters output identical for every budget: {'yes' if same else 'NO'}")
        rows.append({"n": n, "usage": usage, "candidate_pairs": cand, "verified_pairs": ver, "cc_rounds": rounds})
        if not args.keep:
            shutil.rmtree(folder)
    if len(rows) > 1:
        print(f"\n== peak RSS per task from N = {rows[0]['n']:,} to {rows[-1]['n']:,} at K = {args.pair_tasks}")
        for name in rows[0]["usage"]:
            if name not in rows[-1]["usage"]:
                continue
            a, b = rows[0]["usage"][name]["peak_rss_mb"], rows[-1]["usage"][name]["peak_rss_mb"]
            ns = [r["n"] for r in rows]
            g = growth(ns, [r["usage"][name]["cpu_s"] for r in rows])
            print(f"{name:<30}{a:>8.0f} MB -> {b:>6.0f} MB ({100 * (b / a - 1):+.0f}%); CPU growth exponent {g:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def star_rounds(a: np.ndarray, b: np.ndarray) -> int:
    """Large-star rounds the build's star stages need to settle the graph (a, b): the same reductions
    (twbert.pipeline.components), on one task in memory."""
    from twbert.pipeline import components

    def both(x, y):
        return np.stack([np.concatenate([x, y]), np.concatenate([y, x])], 1).astype(np.uint64)

    rec, rounds = both(a, b), 0
    while True:
        rounds += 1
        rec = next(components._sorted(rec))
        v, m, unsettled = components.large_star(rec)
        if unsettled == 0:
            return rounds
        x, mm = components.small_star(next(components._sorted(np.stack([v, m], 1))))
        rec = both(x, mm)


def run_rounds(args) -> None:
    rng = np.random.default_rng(0)
    print(f"{'graph':<34}" + "".join(f"{n:>10,}" for n in args.nodes))
    shapes = {
        "chain, keys in order": lambda n: (np.arange(n - 1), np.arange(1, n)),
        "chain, keys shuffled": lambda n: (lambda p: (p[:-1], p[1:]))(rng.permutation(n)),
        "random graph, 0.75 edges a node": lambda n: (rng.integers(0, n, 3 * n // 4), rng.integers(0, n, 3 * n // 4)),
        "cliques of 2-200": lambda n: cliques(n, rng),
        "star": lambda n: (np.full(n - 1, n - 1), np.arange(n - 1)),
    }
    for name, make in shapes.items():
        print(f"{name:<34}" + "".join(f"{star_rounds(*make(n)):>10}" for n in args.nodes))


def cliques(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    a, b, s = [], [], 0
    perm = rng.permutation(n)
    while s < n - 200:
        k = int(rng.integers(2, 200))
        i, j = np.triu_indices(k, 1)
        a.append(perm[s + i]), b.append(perm[s + j])
        s += k
    return np.concatenate(a), np.concatenate(b)


def run_signatures(args) -> None:
    """CPU seconds of `dedup_signatures` alone on a build's `work/ingest` (4 tasks, one process)."""
    from datatrove.executor import LocalPipelineExecutor

    from twbert.config import defaults
    from twbert.pipeline import dedup

    tmp = Path(args.work) / "signatures-only"
    shutil.rmtree(tmp, ignore_errors=True)
    cfg = defaults("build")
    cfg["executor"]["tasks"] = 4
    stage = dedup.stages(cfg, Path(args.run) / "work" / "ingest", tmp / "docs", tmp / "work")[0]
    t = time.process_time()
    LocalPipelineExecutor(stage.pipeline, tasks=4, workers=1, logging_dir=str(tmp / "logs")).run()
    cpu = time.process_time() - t
    mb = du(Path(args.run) / "work" / "ingest")
    print(f"dedup_signatures on {args.run}: {cpu:.1f} CPU s ({mb:.1f} MB of gzip input)")
    shutil.rmtree(tmp)


PROFILED = ("ingest", "dedup_signatures", "shards")


def run_profile(args) -> None:
    """Task 0 of `ingest`, `dedup_signatures` and `shards` of a kept build, in this process: its CPU
    seconds and MB of text, then once more under cProfile, the functions with the most own time."""
    import cProfile
    import pstats

    from twbert.build import plan
    from twbert.config import load

    run = Path(args.run).resolve()
    raw = run.parent / f"raw-{run.name.split('-')[-1]}"
    if not raw.is_dir():
        sys.exit(f"{raw}: not found; rerun `bench_scale.py build --keep 1` to keep the inputs beside {run}")
    for name in args.stages:
        timings = []
        for profiled in (False, True):
            scratch = Path(args.work) / "profile"
            shutil.rmtree(scratch, ignore_errors=True)
            (scratch / "work").mkdir(parents=True)
            if name != "ingest":  # the stage's input, from the kept build
                os.symlink(run / "work" / "ingest", scratch / "work" / "ingest")
                os.symlink(run / "documents", scratch / "documents")
            cfg = load("build", overrides={"out": str(scratch), "inputs": {"fineweb": [str(raw)]},
                                           "executor": {"tasks": args.tasks, "workers": 1},
                                           "shards": {"tokenizer": str(run / "shards" / "tokenizer")}})
            stage = next(st for st in plan(cfg) if st.name == name)
            prof = cProfile.Profile(time.process_time) if profiled else None  # CPU, not wall: the cores are shared
            t = time.process_time()
            if prof:
                prof.enable()
            read = [0]

            def counted(docs):  # UTF-8 bytes of the text the stage read
                for doc in docs:
                    read[0] += len(doc.text.encode("utf-8"))
                    yield doc

            data = None
            last_reader = max(i for i, st in enumerate(stage.pipeline) if "READER" in str(st.type))
            for i, step in enumerate(stage.pipeline):
                data = step(data, 0, stage.tasks)
                if i == last_reader:
                    data = counted(data)
            for _ in data or []:
                pass
            if prof:
                prof.disable()
            timings.append(time.process_time() - t)
            mb = read[0] / 1e6
        print(f"\n== {name}, task 0 of {args.tasks}: {timings[0]:.2f} CPU s for {mb:.1f} MB of text "
              f"({timings[0] / mb:.2f} s per MB; the second run of a process: modules and the segmenter's "
              f"dictionary are loaded); under cProfile {timings[1]:.2f} s, own CPU time per function:")
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]
        for (file, line, func), (_, calls, own, _cum, _) in rows:
            where = f"{Path(file).name}:{line}" if line else file
            print(f"  {100 * own / total:5.1f}%  {own:6.2f} s own  {calls:>9,} calls  {func}  ({where})")
        shutil.rmtree(Path(args.work) / "profile", ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["_stage"]:  # internal: one dedup stage, run by `dedup` in a fresh process
        return run_stage(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]),
                         int(sys.argv[7]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build", help="the real twbert build at several sizes")
    b.add_argument("--sizes", type=int, nargs="+", default=[2000, 6000, 20000])
    b.add_argument("--tasks", type=int, default=4)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--dup-rate", type=float, default=0.07)
    b.add_argument("--drcd", type=Path, default=ROOT.parent / "shared" / "data" / "drcd_test.json",
                   help="DRCD json whose sentences are recombined (default: ../shared/data/drcd_test.json)")
    b.add_argument("--tokenizer", help="prepared tokenizer dir (default: train one on the smallest corpus)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--keep", type=int, default=0, help="1: keep the generated inputs")
    b.add_argument("--verbose", action="store_true")
    d = sub.add_parser("dedup", help="the dedup pair and cluster stages on synthetic signatures")
    d.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    d.add_argument("--pair-tasks", type=int, default=4)
    d.add_argument("--block-pairs", type=int, default=None, help="dedup.block_pairs (default: the config's)")
    d.add_argument("--cluster-memory-gb", type=float, nargs="+", default=None,
                   help="dedup.cluster_memory_gb values for the star rounds and dedup_clusters, each run on the same "
                        "pairs (default: the config's); a small value makes every task sort its edges in pieces on disk")
    d.add_argument("--workers", type=int, default=1)
    d.add_argument("--check", action="store_true", help="first check the band-file emulation against datatrove")
    d.add_argument("--keep", action="store_true")
    c = sub.add_parser("candidates", help="candidate pairs per document, recall and false positives of LSH settings")
    c.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    c.add_argument("--ngrams", type=int, nargs="+", default=[3])
    c.add_argument("--bands", nargs="+", default=["28x3"], help="BUCKETSxHASHES settings")
    c.add_argument("--threshold", type=float, default=0.45)
    c.add_argument("--dup-rate", type=float, default=0.07)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--drcd", type=Path, default=ROOT.parent / "shared" / "data" / "drcd_test.json")
    g = sub.add_parser("signatures", help="the dedup_signatures stage alone on a build's work/ingest")
    g.add_argument("run", help="a build's OUT directory (bench_scale build leaves them under --work as build-N)")
    f = sub.add_parser("profile", help="task 0 of ingest, dedup_signatures and shards of a kept build, with its cProfile")
    f.add_argument("run", help="a build's OUT directory left by `build --keep 1` (its raw-N inputs beside it)")
    f.add_argument("--stages", nargs="+", default=list(PROFILED), choices=PROFILED)
    f.add_argument("--tasks", type=int, default=4, help="the build's task count (task 0 reads 1/tasks of the input)")
    f.add_argument("--top", type=int, default=12, help="functions listed per stage")
    r = sub.add_parser("rounds", help="large-star / small-star rounds until settled, on graph shapes (in memory)")
    r.add_argument("--nodes", type=int, nargs="+", default=[1000, 20000])
    for p in (b, d, c, g, f):
        p.add_argument("--work", default=os.environ.get("TWBERT_BENCH_WORK", "/tmp/twbert-bench-scale"),
                       help="scratch directory (outside the repository)")
        p.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    {"build": run_build, "dedup": run_dedup, "candidates": run_candidates, "signatures": run_signatures,
     "profile": run_profile, "rounds": run_rounds}[args.what](args)



# --- candidate volume -------------------------------------------------------------------------------

def pairs_of_bands(sigs: np.ndarray, b: int, r: int) -> np.ndarray:
    """Distinct document pairs (i < j) that agree on all r hashes of at least one of b bands."""
    out = []
    n = len(sigs)
    for k in range(b):
        band = np.ascontiguousarray(sigs[:, k * r : (k + 1) * r])
        key = band.view(np.dtype((np.void, band.dtype.itemsize * r))).ravel()
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
        ends = np.append(starts[1:], n)
        for s_, e_ in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist()):
            m = np.sort(order[s_:e_])
            i, j = np.triu_indices(len(m), 1)
            out.append(m[i].astype(np.int64) * n + m[j])
    return np.unique(np.concatenate(out)) if out else np.empty(0, np.int64)


def run_candidates(args) -> None:
    """Candidates per document, recall and false positives of LSH settings on the bench's web corpus."""
    from twbert.pipeline.dedup import permutations, signature
    from twbert.pipeline.shingles import Shingler

    pool = sentence_pool(args.drcd)
    settings = [tuple(int(x) for x in s.split("x")) for s in args.bands]
    width = max(b * r for b, r in settings)
    a, bb = permutations(1, width)
    for n in sorted(args.sizes):
        rows, planted = corpus(n, pool, args.dup_rate, args.seed)
        index = {row["id"]: i for i, row in enumerate(rows)}
        planted_keys = np.array(sorted(min(index[x], index[y]) * n + max(index[x], index[y]) for x, y in planted))
        in_pair = np.zeros(n, bool)
        in_pair[planted_keys // n] = in_pair[planted_keys % n] = True
        for ngram in args.ngrams:
            sh = Shingler(ngram)
            t0 = time.process_time()
            sigs = np.stack([signature(sh.shingles(row["text"]), a, bb) for row in rows])
            sig_cpu = time.process_time() - t0
            for b, r in settings:
                s = sigs[:, : b * r]
                cand = pairs_of_bands(s, b, r)
                i, j = cand // n, cand % n
                est = (s[i] == s[j]).mean(axis=1)
                verified = cand[est >= args.threshold]
                is_planted = np.isin(cand, planted_keys)
                found = np.isin(planted_keys, verified).mean()
                # A distinct document (in no planted pair) verified against anything is a false positive.
                vi, vj = verified // n, verified % n
                fp_docs = np.unique(np.concatenate([vi[~in_pair[vi]], vj[~in_pair[vj]]]))
                print(f"N={n:>6,} ngram={ngram} bands={b}x{r}: candidates/doc {len(cand) / n:7.3f} "
                      f"(other than planted {(~is_planted).sum() / n:7.3f}); recall {found:.3f}; "
                      f"false positives {len(fp_docs)}/{(~in_pair).sum()}; signatures {1e3 * sig_cpu / n * (b * r) / width:.1f} ms/doc",
                      flush=True)


if __name__ == "__main__":
    main()

"""Converter settings on real zhwiki pages: artifacts, rule forms honoured, Simplified-only characters, speed.

The pages are not shipped: benchmarks/convert_sources.tsv lists them (set, file, origin); copy them
to a folder and pass it. For each page set (tuning / heldout) and converter setting this prints:
- artifacts per 100k characters of output (pipeline/artifacts.py's list);
- the share of page-rule zh-tw forms honoured (-{H|…}-, -{A|…}-, NoteTA numbered rules), and of
  group forms when a conversion-group extract is given: every place where the output shows either
  the rule's zh-tw form or the converter's own rendering of one of the rule's other forms counts,
  and honoured is the share showing the zh-tw form;
- the share of Han characters that are Simplified-only (OpenCC STCharacters keys that Taiwan never
  writes) and the share outside Big5 (cp950);
- CPU seconds and pages/s per core of the wiki cleaner, today's code (`--baseline`, a copy of the
  previous pipeline/wikitext.py) side by side;
- differences against zhconv-rs's own wikitext mode (`zhconv(text, "zh-tw", wikitext=True)`, its
  output stripped of markup by the same renderer with conversion switched off).

    python benchmarks/bench_convert.py PAGES_DIR [--cgroups EXTRACT.json] [--baseline OLD_wikitext.py]
    python benchmarks/bench_convert.py --extract-cgroups ZHCONV_RS/data/cgroups OUT.json --revision COMMIT
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

SETTINGS = ("mediawiki", "mediawiki+phrases", "s2tw", "s2twp")
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ffff]")


def read_sources(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split("\t")
        if cols[0] in ("tuning", "heldout"):
            rows.append((cols[0], cols[1]))
    return rows


def extract_cgroups(src: Path, out: Path, revision: str) -> None:
    """zhconv-rs's data/cgroups/*.json (one per Module:CGroup page) → one pinned extract."""
    groups = {}
    for f in sorted(src.glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        groups[data["name"]] = [r["conv"] for r in data.get("rules", []) if r.get("conv")]
    out.write_text(json.dumps({"source": f"zhconv-rs data/cgroups ({src})", "revision": revision,
                               "groups": groups, "aliases": {}}, ensure_ascii=False), encoding="utf-8")
    print(f"{len(groups)} groups, {sum(map(len, groups.values()))} rules -> {out}")


def simplified_only() -> frozenset[str]:
    from twbert.pipeline.variant import char_sets

    return char_sets()[1]


def char_shares(text: str, simp: frozenset[str]) -> tuple[float, float, int]:
    han = _HAN.findall(text)
    if not han:
        return 0.0, 0.0, 0
    n_simp = sum(c in simp for c in han)
    n_big5 = 0
    for c in han:
        try:
            c.encode("cp950")
        except UnicodeEncodeError:
            n_big5 += 1
    return n_simp / len(han), n_big5 / len(han), len(han)


def rule_forms(wikitext: str, w, groups: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(page rule pairs, group rule pairs) as (source form, zh-tw form), sources differing from targets."""
    import mwparserfromhell

    from twbert.pipeline.wikitext import _CONVERSION, _FLAGS, _template_name

    page, names = [], []
    for m in _CONVERSION.finditer(wikitext):
        fm = _FLAGS.match(m.group(1))
        if fm and ({f.strip() for f in fm.group(1).split(";")} & {"H", "A"}):
            page += list(w._rule_targets(fm.group(2))[0].items())
    for t in mwparserfromhell.parse(wikitext).filter_templates(recursive=False):
        if _template_name(t) == "noteta":
            for p in t.params:
                name, value = str(p.name).strip(), str(p.value).strip()
                if name.isdigit() and value:
                    page += list(w._rule_targets(value)[0].items())
                elif re.match(r"^G\d+$", name, re.I) and value:
                    names.append(value)
    grp = [pair for n in names for body in groups.get(n, ()) for pair in w._rule_targets(body)[0].items()]
    return [(s, t) for s, t in page if s != t], [(s, t) for s, t in grp if s != t]


def honoured(text: str, pairs, base) -> tuple[int, int]:
    """(places showing the zh-tw form, places showing the converter's rendering of another form)."""
    ok = bad = 0
    targets = sorted({t for _, t in pairs if t}, key=len, reverse=True)
    # A wrong form inside another rule's zh-tw form (識別 in 識別碼) is that rule honoured, not this one missed.
    masked = re.sub("|".join(map(re.escape, targets)), lambda m: "\0" * len(m.group(0)), text) if targets else text
    for target in dict.fromkeys(t for _, t in pairs):
        wrong = {base(s) for s, t in pairs if t == target} - {target}
        wrong = {x for x in wrong if x and x not in target and target not in x}
        n_ok = text.count(target)
        n_bad = sum(masked.count(x) for x in wrong)
        if n_ok or n_bad:
            ok += n_ok
            bad += n_bad
    return ok, bad


def load_baseline(path: Path):
    spec = importlib.util.spec_from_file_location("wikitext_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Wikitext()


def cpu(fn, pages, reps: int) -> float:
    for p in pages:  # warm up: converters load, group tables build once per worker
        fn(p)
    t = time.process_time()
    for _ in range(reps):
        for p in pages:
            fn(p)
    return time.process_time() - t


def variant_evidence(mainland: Path, taiwan: Path) -> None:
    from twbert.config import defaults
    from twbert.pipeline.artifacts import ArtifactDetector
    from twbert.pipeline.policy import decide
    from twbert.pipeline.variant import VariantFeatures, converter

    vcfg = defaults("build")["variant"]
    terms = vcfg["terms"]
    feats = VariantFeatures(tuple(terms["mainland_extra"]), tuple(terms["mainland_ignore"]), tuple(terms["hk_extra"]))
    det = ArtifactDetector()

    def contexts(path):
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(dict.fromkeys(p["context"] for a in data["data"] for p in a["paragraphs"]))

    cn = contexts(mainland)
    sets = [(f"Taiwan {taiwan.name} as written", contexts(taiwan))]
    sets += [(f"Mainland {mainland.name} via {c}", [converter(c).convert(t) for t in cn]) for c in ("s2t", "s2tw", "s2twp")]
    for name, texts in sets:
        in_tw = [t for t in texts if decide(feats(t), vcfg["policy"])[1] == "tw"]
        print(f"{name}: {sum(det.count(t) > 0 for t in texts)}/{len(texts)} paragraphs with an artifact; "
              f"{len(in_tw)} reach `tw`, {sum(det.count(t) > 0 for t in in_tw)} of them with an artifact")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="?", help="folder holding the files listed in benchmarks/convert_sources.tsv")
    ap.add_argument("--cgroups", help="a pinned conversion-group extract (JSON) to apply NoteTA's G1=… groups")
    ap.add_argument("--baseline", help="the previous pipeline/wikitext.py, for the side-by-side speed figure")
    ap.add_argument("--reps", type=int, default=5, help="renders of each page set per speed measurement (default 5)")
    ap.add_argument("--roundtrip", help="DRCD-style JSON of Taiwan text: taken to Simplified (OpenCC t2s) and back "
                    "with each setting; artifacts and agreement with the original")
    ap.add_argument("--prose", nargs="*", default=[], help="more plain Simplified text files, converted with each setting")
    ap.add_argument("--max-chars", type=int, default=400_000, help="characters read from each --prose/--roundtrip file")
    ap.add_argument("--generated", type=int, default=0,
                    help="with --baseline: also time N of bench_ingest.py's generated zhwiki pages (3 paragraphs each)")
    ap.add_argument("--variant-evidence", nargs=2, metavar=("MAINLAND_JSON", "TAIWAN_JSON"),
                    help="SQuAD-style JSON files (CMRC 2018 dev, DRCD test): how often Mainland paragraphs converted "
                    "with s2t/s2tw/s2twp that the variant rules still call `tw` carry an artifact, and Taiwan ones do")
    ap.add_argument("--extract-cgroups", nargs=2, metavar=("SRC_DIR", "OUT_JSON"))
    ap.add_argument("--revision", default="unknown", help="with --extract-cgroups: what the extract was taken from")
    args = ap.parse_args(argv)
    if args.extract_cgroups:
        extract_cgroups(Path(args.extract_cgroups[0]), Path(args.extract_cgroups[1]), args.revision)
        return
    if args.variant_evidence:
        variant_evidence(*map(Path, args.variant_evidence))
        return
    if not args.pages:
        ap.error("give PAGES_DIR (or --extract-cgroups / --variant-evidence)")

    import zhconv_rs

    from twbert.pipeline.artifacts import ArtifactDetector
    from twbert.pipeline.cgroups import load_groups
    from twbert.pipeline.convert import Converter
    from twbert.pipeline.wikitext import Wikitext

    root = Path(args.pages)
    sources = read_sources(Path(__file__).with_name("convert_sources.tsv"))
    missing = [f for _, f in sources if not (root / f).is_file()]
    if missing:
        sys.exit(f"missing in {root}: {', '.join(missing)} (benchmarks/convert_sources.tsv says where each comes from)")
    groups = load_groups(args.cgroups) if args.cgroups else {}
    det, simp = ArtifactDetector(), simplified_only()
    sets: dict[str, list[tuple[str, str]]] = {}
    for s, f in sources:
        sets.setdefault(s, []).append((f, (root / f).read_text(encoding="utf-8")))
    print(f"groups: {len(groups)} ({args.cgroups or 'none'})")
    for setting in SETTINGS:
        w = Wikitext(convert=setting, groups=groups)
        base = Converter(setting).convert
        for name, pages in sets.items():
            out_chars = arts = p_ok = p_bad = g_ok = g_bad = n_han = 0
            simp_sum = big5_sum = 0.0
            hits: dict[str, int] = {}
            for f, text in pages:
                # Rendered text (markup stripped) for wikitext; the plain file is converted as is.
                out = w.render(text) if f.endswith(".wiki") else base(text)
                out_chars += len(out)
                arts += det.count(out)
                for h in det.hits(out):
                    hits[h] = hits.get(h, 0) + 1
                s_share, b_share, han = char_shares(out, simp)
                simp_sum += s_share * han
                big5_sum += b_share * han
                n_han += han
                if f.endswith(".wiki"):
                    page_pairs, group_pairs = rule_forms(text, w, groups)
                    a, b = honoured(out, page_pairs, base)
                    p_ok, p_bad = p_ok + a, p_bad + b
                    a, b = honoured(out, group_pairs, base)
                    g_ok, g_bad = g_ok + a, g_bad + b
            share = lambda ok, bad: f"{ok / (ok + bad):.3f} ({ok}/{ok + bad})" if ok + bad else "n/a"  # noqa: E731
            print(f"{name:8s} {setting:18s} chars={out_chars:7d} artifacts/100k={arts * 1e5 / max(out_chars, 1):6.2f} "
                  f"page-rule forms={share(p_ok, p_bad)} group forms={share(g_ok, g_bad)} "
                  f"simplified-only={simp_sum / max(n_han, 1):.4f} outside-big5={big5_sum / max(n_han, 1):.4f} "
                  f"hits={sorted(hits.items(), key=lambda kv: -kv[1])[:6]}")

    if args.baseline:  # today's code: s2twp, exact-match page rules, no groups
        old = load_baseline(Path(args.baseline))
        s2twp = Converter("s2twp").convert
        for name, pages in sets.items():
            outs = [old.render(t) if f.endswith(".wiki") else s2twp(t) for f, t in pages]
            ok = bad = 0
            for (f, t), out in zip(pages, outs):
                if f.endswith(".wiki"):
                    a, b = honoured(out, rule_forms(t, Wikitext(convert="s2twp"), {})[0], s2twp)
                    ok, bad = ok + a, bad + b
            chars = sum(map(len, outs))
            arts = sum(det.count(o) for o in outs)
            print(f"{name:8s} {'today (s2twp)':18s} chars={chars:7d} artifacts/100k={arts * 1e5 / max(chars, 1):6.2f} "
                  f"page-rule forms={ok / max(ok + bad, 1):.3f} ({ok}/{ok + bad})")

    extra = [(Path(p).name, Path(p).read_text(encoding="utf-8")[: args.max_chars], None) for p in args.prose]
    if args.roundtrip:
        import opencc

        data = json.loads(Path(args.roundtrip).read_text(encoding="utf-8"))
        orig = "\n".join(p["context"] for a in data["data"] for p in a["paragraphs"])[: args.max_chars]
        extra.append((Path(args.roundtrip).name + " (t2s round trip)", opencc.OpenCC("t2s").convert(orig), orig))
    for label, text, orig in extra:
        for setting in SETTINGS:
            out = Converter(setting).convert(text)
            arts = det.count(out)
            agree = ""
            if orig is not None:  # characters of the Taiwan original recovered, paragraph by paragraph
                same = sum(sum(m.size for m in difflib.SequenceMatcher(None, o, c, autojunk=False).get_matching_blocks())
                           for o, c in zip(orig.split("\n"), out.split("\n")))
                agree = f" agreement with the original={same / len(orig):.4f}"
            s_share, _, _ = char_shares(out, simp)
            print(f"{label[:28]:28s} {setting:18s} chars={len(out):7d} artifacts/100k={arts * 1e5 / max(len(out), 1):6.2f} "
                  f"simplified-only={s_share:.4f}{agree} hits={sorted(set(det.hits(out)))[:6]}")

    wiki_pages = [t for ps in sets.values() for f, t in ps if f.endswith(".wiki")]
    new = Wikitext(groups=groups)
    old = load_baseline(Path(args.baseline)) if args.baseline else None
    n = len(wiki_pages) * args.reps
    # Page by page, the two renderers alternate, best of 5 rounds per page: the machine is shared,
    # and the minimum is the least disturbed. Totals are sums of the per-page minima.
    t_new = t_old = 0.0
    for page in wiki_pages:
        best_new = best_old = float("inf")
        for _ in range(5):
            best_new = min(best_new, cpu(new.render, [page], args.reps))
            if old is not None:
                best_old = min(best_old, cpu(old.render, [page], args.reps))
        t_new += best_new
        t_old += best_old if old is not None else 0.0
    line = f"speed: new (mediawiki{' + groups' if groups else ''}) {t_new:.2f} CPU s, {n / t_new:.1f} pages/s per core"
    if old is not None:
        line += f"; today's code (s2twp) {t_old:.2f} CPU s, {n / t_old:.1f} pages/s per core; ratio new/old {t_new / t_old:.2f}"
    print(line + f"  ({len(wiki_pages)} pages x {args.reps}, best of 5 per page)")
    if args.generated and old is not None:
        import random

        sys.path.insert(0, str(Path(__file__).parent))
        import bench_ingest

        rng, paras = random.Random(0), bench_ingest.paragraphs()
        gen = [bench_ingest.wikitext(i, rng.sample(paras, 3), rng) for i in range(args.generated)]
        t_new = t_old = float("inf")
        for _ in range(3):
            t_new = min(t_new, cpu(new.render, gen, 1))
            t_old = min(t_old, cpu(old.render, gen, 1))
        print(f"speed, generated pages: new {len(gen) / t_new:.1f} pages/s per core ({t_new:.2f} CPU s); "
              f"today's {len(gen) / t_old:.1f} ({t_old:.2f} CPU s); ratio new/old {t_new / t_old:.2f}")

    # zhconv-rs's wikitext mode on the same pages, markup stripped with conversion switched off.
    plain = Wikitext()
    plain.converter.convert = lambda text: text
    plain._rule_targets = lambda body: ({}, None)
    for f, text in ((f, t) for ps in sets.values() for f, t in ps if f.endswith(".wiki")):
        theirs = plain.render(zhconv_rs.zhconv(text, "zh-tw", True))
        ours = Wikitext(groups=groups).render(text)
        sm = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
        diffs = [(ours[i1:i2], theirs[j1:j2]) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]
        same = sum(b.size for b in sm.get_matching_blocks())
        print(f"zhconv-rs wikitext=True vs twbert on {f}: {same / max(len(ours), 1):.4f} of twbert's characters match; "
              f"{len(diffs)} differing spans, first: {diffs[:8]}")


if __name__ == "__main__":
    main()

"""The report's sections (model.py), built once from the numbers of `numbers.inspect_run`."""

from __future__ import annotations

import re

from twbert.inspection.model import Excerpt, Hist, Mark, Note, Plot, Section, Table, number, pct


def ascii_label(s: str) -> str:
    """A label without emoji or CJK: 'X - READER: 📚 zhwiki dump' -> 'READER: zhwiki dump' (plots, step names)."""
    s = s.replace("→", "->").encode("ascii", "ignore").decode()
    s = re.sub(r"\s+", " ", s).strip(" -")
    return s or "?"


def _mix_rows(before: dict, after: dict) -> list[tuple[str, int | None, int | None]]:
    keys = list(before) + [k for k in after if k not in before]
    return [(k, before.get(k), after.get(k)) for k in keys]


def _has_variants(r: dict) -> bool:
    after = r["sources"].get("after") or {}
    return bool(r["sources"].get("variant_step") or (after and set(after.get("tier", {})) != {"absent"}))


def _reasons(dropped: dict) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in sorted(dropped.items(), key=lambda x: -x[1]) if v)


def header(r: dict) -> Section:
    n_bad = sum(not c["ok"] for c in r["checks"])
    return Section(f"twbert inspect: {r['run']}").add(
        Note("has: " + ", ".join(f"{k} {'yes' if v else 'absent'}" for k, v in r["present"].items())),
        Note("all checks pass" if not n_bad else f"{n_bad} check(s) failed", "ok" if not n_bad else "bad"))


def funnel(r: dict) -> Section:
    f, sec = r["funnel"], Section("Funnel")
    if not f.get("present"):
        return sec.add(Note("Funnel: absent (no stats.json: the build did not finish)", "absent"))
    return sec.add(
        Plot("funnel", "funnel plot"), Plot("drop_reasons", "drop reasons plot"),
        Table(["stage", "step", "read", "kept", "dropped", "drop reasons", "ok"],
              [[x["stage"], ascii_label(x["step"]), x["read"], "(written)" if x["sink"] else x["kept"], x["dropped_total"],
                _reasons(x["dropped"]), Mark(x["reconciles"])] for x in f["rows"]],
              title="Funnel: documents per step"))


def removed(r: dict) -> Section:
    rm, sec = r.get("removed") or {}, Section("Removed documents")
    if not rm.get("present"):
        return sec.add(Note(f"Removed: absent ({rm.get('why', 'no removed/ folder')})", "absent"))
    sec.add(Note(f"{rm['documents']:,} documents saved under removed/ by {len(rm['steps'])} steps, "
                 "with the reason each was dropped; a few drawn per reason (seeded)"))
    for s in rm["steps"]:
        stats = s["funnel_dropped"] or {}
        where = (f"funnel step {s['funnel_step']!r}: read {number(s['read'])}, kept {number(s['kept'])}"
                 if s["funnel_step"] else "no funnel step of that name")
        sec.add(Table(["reason", "removed (on disk)", "dropped (stats.json)", "ok"],
                      [[k, v, stats.get("UNEXPLAINED" if k == "(no reason)" else k), Mark(s["reconciles"])]
                       for k, v in s["by_reason"].items()],
                      title=f"{s['folder']}: {s['documents']:,} documents ({where})"))
        for smp in s["samples"]:
            head = " · ".join(str(x) for x in (smp["id"], smp["reason"], smp["source"], smp.get("title") or smp.get("url"),
                                                f"{smp['chars']:,} chars") if x)
            sec.add(Excerpt(head, [(smp["excerpt"] + ("…" if smp["chars"] > len(smp["excerpt"]) else ""), False)]))
    if rm["not_saved"]:
        sec.add(Note("Dropped documents without saving them: " + ", ".join(rm["not_saved"]), "absent"))
    return sec


def sources(r: dict) -> Section:
    s, sec = r["sources"], Section("Sources and variants")
    after = s.get("after")
    if after:
        sec.add(Table(["source", "documents", "share", "characters"],
                      [[k, v, pct(v, after["documents"]), after["chars_by_source"].get(k)] for k, v in after["source"].items()],
                      title=f"Sources: {after['documents']:,} documents kept"),
                Plot("source_tier", "documents per source and tier"))
    if _has_variants(r):
        b = s["before"]
        sec.add(Plot("variant_mix", "variant and tier mix"))
        for what in ("variant", "tier"):
            mine = (after or {}).get(what, {})
            nb, na = sum(b[what].values()), sum(mine.values())
            sec.add(Table([what, "at the policy step", "share", "kept", "share "],
                          [[k, x, pct(x or 0, nb), y, pct(y or 0, na)] for k, x, y in _mix_rows(b[what], mine)],
                          title=f"{what.capitalize()} mix: at the policy step (before dedup) -> documents kept"))
        conv = _mix_rows(b["converted"], (after or {}).get("converted", {}))
        if conv:
            sec.add(Table(["converted to Taiwan form from", "at the policy step", "kept"], [list(x) for x in conv]))
    else:
        sec.add(Note("Variants and tiers: absent (the build ran without the variant step)", "absent"))
    pii = s["before"].get("pii") or {}
    if pii:
        sec.add(Note("PII replaced: " + ", ".join(f"{k} {number(v)}" for k, v in pii.items())))
    if s.get("domains", {}).get("top"):
        sec.add(Table(["domain", "documents"], [[k, v] for k, v in s["domains"]["top"].items()],
                      title=f"Top domains ({s['domains']['distinct']:,} distinct)"))
    return sec


def artifacts(r: dict) -> Section | None:
    a = r.get("artifacts")
    if a is None:
        return None
    sec = Section("Converter artifacts")
    rows = [[k, g["docs"], g["chars"], g["artifacts"], g["per_100k"], g["docs_with"],
             ", ".join(f"{t}×{c}" for t, c in g["top"][:5]) or "-"] for k, g in a.items()]
    sec.add(Table(["source/tier", "docs", "chars", "artifacts", "per 100k", "docs with", "top"],
                  rows, title="Strings that exist only as mis-conversions (pipeline/data/artifacts.tsv), per source and tier"))
    examples = [(k, e) for k, g in a.items() for e in g["examples"][:2]]
    for k, e in examples[:6]:
        sec.add(Note(f"{k}: …{e}…"))
    if not any(g["artifacts"] for g in a.values()):
        sec.add(Note("No converter artifact in the kept documents", "ok"))
    return sec


def dedup(r: dict) -> Section:
    d, sec = r["dedup"], Section("Dedup")
    if not d.get("present"):
        return sec.add(Note("Dedup: absent (the build ran without dedup)", "absent"))
    if d.get("build"):
        b = d["build"]
        sec.add(Note(f"Dedup: {b['read']:,} read, {b['removed']:,} near-duplicates removed ({pct(b['removed'], b['read'])}), "
                     f"{b['kept']:,} kept; {b['clusters']:,} clusters, {b['verified_pairs']:,} verified of "
                     f"{b['candidate_pairs']:,} candidate pairs"
                     + (f", clustered in {b['cc_rounds']} large-star round(s)" if b.get("cc_rounds") else "")))
    if d.get("cluster_sizes"):
        sec.add(Plot("cluster_sizes", "cluster sizes"),
                Table(["cluster size", "documents", "removed with them"],
                      [[k, v, (int(k) - 1) * v] for k, v in d["cluster_sizes"].items()],
                      title="Cluster size of each kept document (1 = unique)"))
    rates = d.get("near_duplicate_rate") or {}
    if rates:
        sec.add(Table(["dedup", "folder", "near-duplicate rate", "95% CI", "sample", "documents"], [
            [k, x["folder"], f"{x['rate']:.1%}", f"{max(0.0, x['ci95'][0]):.1%} – {min(1.0, x['ci95'][1]):.1%}",
             x["sample"], x["documents"]] for k, x in rates.items()],
            title="Near-duplicate rate on a seeded sample, checked against the whole folder"))
    return sec


def lengths(r: dict) -> Section:
    sec = Section("Lengths and tokens")
    dc = r["lengths"].get("doc_chars")
    if dc and dc.get("count"):
        sec.add(Table(["documents", "mean", "median", "p90", "p99", "min", "max"],
                      [[dc["count"], dc["mean"], dc["p50"], dc["p90"], dc["p99"], dc["min"], dc["max"]]],
                      title="Document length (characters)"),
                Hist(r["lengths"]["doc_chars_hist"], "Document length (characters)", "doc_lengths"))
    sh = r["shards"]
    if not sh.get("present"):
        return sec.add(Note("Shards: absent (build with --tokenizer to write them)", "absent"))
    ct = sh["chunk_tokens"]
    sec.add(Note(f"Chunks (tokens, without [CLS]/[SEP]): {ct['count']:,} chunks, mean {ct.get('mean', 0):,}, "
                 f"median {ct.get('p50', 0):,}, p99 {ct.get('p99', 0):,}, max {ct.get('max', 0):,} (limit {sh['max_len'] - 2:,})"),
            Hist(sh["chunk_hist"], "Chunk length (tokens)", "chunk_lengths"),
            Table(["max_len", "chunks that fit", "chunks cut", "sequences", "mean tokens/sequence", "max_len used"],
                  [[p["max_len"], p["chunks_fit"], p["chunks_cut"], p["sequences"], p["mean_sequence_tokens"], f"{p['fill']:.1%}"]
                   for p in sh["phases"].values()],
                  title="Chunks against the training phases' max_len (the loader cuts longer chunks into pieces)"),
            Plot("tokens", "tokens per source and tier"))
    meta, st = sh.get("meta") or {}, sh.get("stats") or {}
    total = sh["counted"]["tokens"]
    rows = [[k, v["documents"], v["chunks"], v["tokens"], meta.get("datasets", {}).get(k, {}).get("tokens"),
             st.get("datasets", {}).get(k), pct(v["tokens"], total)] for k, v in sh["datasets"].items()]
    rows.append(["all", sh["counted"]["documents"], sh["counted"]["chunks"], total, meta.get("tokens"), st.get("tokens"), "100%"])
    return sec.add(Table(["dataset", "documents", "chunks", "tokens counted", "meta.json", "stats.json", "share"], rows,
                         title="Tokens per source and tier: counted in the shards, and as reported"))


def samples(r: dict) -> Section | None:
    if not r["samples"]:
        return None
    sec = Section("Samples").add(Note("Seeded documents; marked spans are what the trainer would mask (n-gram "
                                      "whole-word masking, the default masking config), shown with their original text."))
    for smp in r["samples"]:
        parts = [smp["id"], smp["source"], smp.get("tier") and f"tier {smp['tier']}",
                 smp.get("converted_from") and f"from {smp['converted_from']}", smp.get("title") or smp.get("url"),
                 f"{smp['chars']:,} chars", f"cluster {smp.get('dup_cluster_size') or '-'}"]
        head = " · ".join(str(x) for x in parts if x)
        mp = smp.get("mask_preview")
        if mp:
            caption = (f"mask preview (max_len {mp['max_len']}, rate {mp['rate']:.0%}): {mp['masked_tokens']} of {mp['tokens']} "
                       f"tokens masked; {mp['replaced']['mask']} [MASK], {mp['replaced']['random']} random, "
                       f"{mp['replaced']['unchanged']} unchanged")
            sec.add(Excerpt(head, [(t, bool(m)) for t, m in mp["segments"]], caption))
        else:
            sec.add(Excerpt(head, [(smp["excerpt"] + ("…" if smp["chars"] > len(smp["excerpt"]) else ""), False)]))
    return sec


def checks(r: dict) -> Section:
    n_bad = sum(not c["ok"] for c in r["checks"])
    return Section("Checks").add(
        Table(["ok", "check", "detail"], [[Mark(c["ok"]), c["name"], c["detail"]] for c in r["checks"]],
              title="Checks: the figures reconcile"),
        Note("all checks pass" if not n_bad else f"{n_bad} check(s) failed", "ok" if not n_bad else "bad"))


def differences(cmp: dict, fold: int = 40) -> Section:
    sec = Section(f"Differences: A = {cmp['a']}, B = {cmp['b']}")
    if cmp["same"]:
        return sec.add(Note("no differences: every number is the same"))

    def rows(keep: bool) -> list[list]:
        out = []
        for d in cmp["differences"]:
            if bool(d.get("headline")) != keep:
                continue
            delta = d.get("delta")
            out.append([d["section"], d["key"].split(".", 1)[-1], d["a"], d["b"],
                        "-" if delta is None else ("+" if delta > 0 else "") + number(delta),
                        f"{d['relative']:+.1%}" if "relative" in d else ("new" if d["a"] is None else "gone" if d["b"] is None else "-")])
        return out

    cols = ["section", "number", "A", "B", "B - A", "change"]
    head, rest = rows(True), rows(False)
    return sec.add(
        Table(cols, head, title=f"What changed (B - A): {len(head)} headline numbers"),
        Table(cols, rest, title=f"Every other number that differs: {len(rest)}", fold=fold,
              fold_note=f"{len(rest):,} more numbers differ (funnel steps, histograms, per-step stats): see the table in "
                        f"--html or the list in --json"))


SECTIONS = [header, funnel, removed, sources, artifacts, dedup, lengths, samples, checks]


def build(r: dict) -> list[Section]:
    """Every section of one run's report, in order."""
    return [s for s in (f(r) for f in SECTIONS) if s is not None]

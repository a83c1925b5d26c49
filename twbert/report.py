"""Rendering of `twbert inspect`: rich tables on the terminal, and one self-contained offline HTML file.

Everything shown comes from the dict of `twbert.inspection.inspect_run` (the `--json` output): the
renderers compute nothing of their own. The HTML embeds its plots as base64 PNG (matplotlib, Agg) and
holds no script, stylesheet or font from elsewhere, so it opens the same on an air-gapped machine.
Plot labels are ASCII (step names lose their emoji): a machine without a CJK font would draw Chinese as
boxes. Chinese text (samples, titles) goes in HTML text, which the browser renders with its own fonts.
"""

from __future__ import annotations

import base64
import html
import io
import re

MASK_OPEN, MASK_CLOSE = "［", "］"


# --- shared -------------------------------------------------------------------------------------------
def _n(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return f"{int(v):,}"


def _pct(k, n) -> str:
    return f"{100 * k / n:.1f}%" if n else "-"


def ascii_label(s: str) -> str:
    """A plot label without emoji or CJK: 'X - READER: 📚 zhwiki dump' -> 'READER: zhwiki dump'."""
    s = s.replace("→", "->").encode("ascii", "ignore").decode()
    s = re.sub(r"\s+", " ", s).strip(" -")
    return s or "?"


def _mix_rows(before: dict, after: dict) -> list[tuple[str, int | None, int | None]]:
    keys = list(before) + [k for k in after if k not in before]
    return [(k, before.get(k), after.get(k)) for k in keys]


# --- terminal -----------------------------------------------------------------------------------------
def print_report(r: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    c = console or Console()
    present = r["present"]
    c.rule(f"[bold]twbert inspect[/bold] {r['run']}")
    c.print("has: " + ", ".join(f"{k} {'[green]yes[/green]' if v else '[yellow]absent[/yellow]'}" for k, v in present.items()))

    # Funnel
    f = r["funnel"]
    if f.get("present"):
        t = Table(title="Funnel: documents per step", title_justify="left")
        for col, j in (("stage", "left"), ("step", "left"), ("read", "right"), ("kept", "right"),
                       ("dropped", "right"), ("drop reasons", "left"), ("ok", "center")):
            t.add_column(col, justify=j)
        for row in f["rows"]:
            reasons = ", ".join(f"{k}={v:,}" for k, v in sorted(row["dropped"].items(), key=lambda x: -x[1]) if v)
            t.add_row(row["stage"], ascii_label(row["step"]), _n(row["read"]), "(written)" if row["sink"] else _n(row["kept"]),
                      _n(row["dropped_total"]), reasons, "[green]✓[/green]" if row["reconciles"] else "[red]✗[/red]")
        c.print(t)
    else:
        c.print("[yellow]Funnel: absent[/yellow] (no stats.json: the build did not finish)")

    # Sources and variants
    s = r["sources"]
    after = s.get("after")
    if after:
        t = Table(title=f"Sources: {after['documents']:,} documents kept", title_justify="left")
        for col in ("source", "documents", "share", "characters"):
            t.add_column(col, justify="left" if col == "source" else "right")
        for k, v in after["source"].items():
            t.add_row(k, _n(v), _pct(v, after["documents"]), _n(after["chars_by_source"].get(k)))
        c.print(t)
    if s.get("variant_step") or (after and set(after["tier"]) != {"absent"}):
        b = s["before"]
        for what in ("variant", "tier"):
            t = Table(title=f"{what.capitalize()} mix: at the policy step (before dedup) -> documents kept",
                      title_justify="left")
            for col in (what, "before", "share", "after", "share "):
                t.add_column(col, justify="left" if col == what else "right")
            nb, na = sum(b[what].values()), sum((after or {}).get(what, {}).values())
            for k, x, y in _mix_rows(b[what], (after or {}).get(what, {})):
                t.add_row(k, _n(x), _pct(x or 0, nb), _n(y), _pct(y or 0, na))
            c.print(t)
        conv_b, conv_a = b["converted"], (after or {}).get("converted", {})
        if conv_b or conv_a:
            c.print("Converted to Taiwan form: " + ", ".join(
                f"{k}: {_n(x)} at the policy step, {_n(y)} kept" for k, x, y in _mix_rows(conv_b, conv_a)))
    else:
        c.print("[yellow]Variants and tiers: absent[/yellow] (the build ran without the variant step)")
    pii = s["before"].get("pii") or {}
    if pii:
        c.print("PII replaced: " + ", ".join(f"{k} {_n(v)}" for k, v in pii.items()))
    if s.get("domains", {}).get("top"):
        t = Table(title=f"Top domains ({s['domains']['distinct']:,} distinct)", title_justify="left")
        t.add_column("domain")
        t.add_column("documents", justify="right")
        for k, v in s["domains"]["top"].items():
            t.add_row(k, _n(v))
        c.print(t)

    # Dedup
    d = r["dedup"]
    if d.get("build"):
        bd = d["build"]
        c.print(f"[bold]Dedup[/bold]: {bd['read']:,} read, {bd['removed']:,} near-duplicates removed "
                f"({_pct(bd['removed'], bd['read'])}), {bd['kept']:,} kept; {bd['clusters']:,} clusters, "
                f"{bd['verified_pairs']:,} verified of {bd['candidate_pairs']:,} candidate pairs")
    elif not d.get("present"):
        c.print("[yellow]Dedup: absent[/yellow] (the build ran without dedup)")
    if d.get("cluster_sizes"):
        t = Table(title="Cluster size of each kept document (1 = unique)", title_justify="left")
        t.add_column("cluster size", justify="right")
        t.add_column("documents", justify="right")
        t.add_column("removed with them", justify="right")
        for k, v in d["cluster_sizes"].items():
            t.add_row(k, _n(v), _n((int(k) - 1) * v))
        c.print(t)
    for label, e in (d.get("near_duplicate_rate") or {}).items():
        c.print(f"Near-duplicate rate {label} dedup ({e['folder']}): {e['rate']:.1%} "
                f"(95% CI {max(0.0, e['ci95'][0]):.1%}-{min(1.0, e['ci95'][1]):.1%}) on a seeded sample of {e['sample']:,} of "
                f"{e['documents']:,} documents, checked against the whole folder")

    # Lengths and tokens
    L = r["lengths"]
    if L.get("doc_chars") and L["doc_chars"]["count"]:
        dc = L["doc_chars"]
        c.print(f"[bold]Document length[/bold] (characters): mean {dc['mean']:,}, median {dc['p50']:,}, "
                f"p90 {dc['p90']:,}, p99 {dc['p99']:,}, min {dc['min']:,}, max {dc['max']:,}")
        c.print(_text_hist(L["doc_chars_hist"]))
    sh = r["shards"]
    if sh.get("present"):
        ct = sh["chunk_tokens"]
        c.print(f"[bold]Chunks[/bold] (tokens, without [CLS]/[SEP]): {ct['count']:,} chunks, mean {ct.get('mean', 0):,}, "
                f"median {ct.get('p50', 0):,}, p99 {ct.get('p99', 0):,}, max {ct.get('max', 0):,} (limit {sh['max_len'] - 2:,})")
        c.print(_text_hist(sh["chunk_hist"]))
        t = Table(title="Chunks against the training phases' max_len (the loader cuts longer chunks into pieces)",
                  title_justify="left")
        for col in ("max_len", "chunks that fit", "chunks cut", "sequences", "mean tokens/sequence", "max_len used"):
            t.add_column(col, justify="right")
        for p in sh["phases"].values():
            t.add_row(_n(p["max_len"]), _n(p["chunks_fit"]), _n(p["chunks_cut"]), _n(p["sequences"]),
                      _n(p["mean_sequence_tokens"]), f"{p['fill']:.1%}")
        c.print(t)
        t = Table(title="Tokens per source and tier: counted in the shards, and as reported", title_justify="left")
        for col in ("dataset", "documents", "chunks", "tokens counted", "meta.json", "stats.json", "share"):
            t.add_column(col, justify="left" if col == "dataset" else "right")
        meta, st = sh.get("meta") or {}, sh.get("stats") or {}
        total = sh["counted"]["tokens"]
        for k, v in sh["datasets"].items():
            t.add_row(k, _n(v["documents"]), _n(v["chunks"]), _n(v["tokens"]),
                      _n(meta.get("datasets", {}).get(k, {}).get("tokens")), _n(st.get("datasets", {}).get(k)),
                      _pct(v["tokens"], total))
        t.add_row("[bold]all[/bold]", _n(sh["counted"]["documents"]), _n(sh["counted"]["chunks"]), _n(total),
                  _n(meta.get("tokens")), _n(st.get("tokens")), "100%")
        c.print(t)
    else:
        c.print("[yellow]Shards: absent[/yellow] (build with --tokenizer to write them)")

    # Samples
    for smp in r["samples"]:
        where = smp.get("title") or smp.get("url") or ""
        head = f"[bold]{smp['id']}[/bold]  {smp['source']}"
        if smp.get("tier"):
            head += f" / {smp['tier']}"
        if smp.get("converted_from"):
            head += f" (from {smp['converted_from']})"
        c.print(f"\n{head}  {where}  {smp['chars']:,} chars, cluster {smp.get('dup_cluster_size') or '-'}")
        mp = smp.get("mask_preview")
        if mp:
            c.print(f"mask preview (max_len {mp['max_len']}, rate {mp['rate']:.0%}: {mp['masked_tokens']} of "
                    f"{mp['tokens']} tokens; {mp['replaced']['mask']} [MASK], {mp['replaced']['random']} random, "
                    f"{mp['replaced']['unchanged']} unchanged):")
            text = Text()
            for seg, masked in mp["segments"]:
                if masked:
                    core = seg.rstrip()
                    text.append(MASK_OPEN + core + MASK_CLOSE, style="bold reverse")
                    text.append(seg[len(core):])
                else:
                    text.append(seg)
            c.print(text)
        else:
            c.print(Text(smp["excerpt"] + ("…" if smp["chars"] > len(smp["excerpt"]) else "")))

    # Checks
    t = Table(title="Checks: the figures reconcile", title_justify="left")
    t.add_column("ok", justify="center")
    t.add_column("check")
    t.add_column("detail")
    for ch in r["checks"]:
        t.add_row("[green]✓[/green]" if ch["ok"] else "[red]✗[/red]", ch["name"], ch["detail"])
    c.print(t)
    n_bad = sum(not ch["ok"] for ch in r["checks"])
    c.print("[green]all checks pass[/green]" if not n_bad else f"[red]{n_bad} check(s) failed[/red]")


def _text_hist(h: dict, width: int = 40) -> str:
    top = max(h.values()) or 1
    rows = [(k, v) for k, v in h.items()]
    # trim empty buckets at both ends, keep the ones between
    while rows and not rows[-1][1]:
        rows.pop()
    while rows and not rows[0][1]:
        rows.pop(0)
    return "\n".join(f"  {k:>8} {v:>10,} {'█' * round(width * v / top)}" for k, v in rows)


def print_comparison(cmp: dict, console=None, max_rows: int = 40) -> None:
    from rich.console import Console

    c = console or Console()
    c.rule(f"[bold]differences[/bold]  A = {cmp['a']}   B = {cmp['b']}")
    if cmp["same"]:
        c.print("no differences: every number is the same")
        return
    head = [d for d in cmp["differences"] if d.get("headline")]
    rest = [d for d in cmp["differences"] if not d.get("headline")]
    c.print(_diff_table(head, f"What changed (B - A): {len(head)} headline numbers"))
    if len(rest) <= max_rows:
        c.print(_diff_table(rest, f"Every other number that differs: {len(rest)}"))
    else:
        c.print(f"{len(rest):,} more numbers differ (funnel steps, histograms, per-step stats): see the table in "
                f"--html or the list in --json")


def _diff_table(diffs: list[dict], title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col, j in (("section", "left"), ("number", "left"), ("A", "right"), ("B", "right"), ("B - A", "right"), ("change", "right")):
        t.add_column(col, justify=j)
    for d in diffs:
        delta = d.get("delta")
        t.add_row(d["section"], d["key"].split(".", 1)[1] if "." in d["key"] else d["key"], _n(d["a"]), _n(d["b"]),
                  "-" if delta is None else (("+" if delta > 0 else "") + _n(delta)),
                  f"{d['relative']:+.1%}" if "relative" in d else ("new" if d["a"] is None else "gone" if d["b"] is None else "-"))
    return t


# --- HTML ---------------------------------------------------------------------------------------------
def _setup_matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.autolayout": True})
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plots(r: dict, other: dict | None = None) -> dict[str, str]:
    """{name: base64 PNG} for every plot the report has data for; `other` (the --against run) is overlaid."""
    import numpy as np

    plt = _setup_matplotlib()
    out = {}
    f = r["funnel"]
    if f.get("present"):
        rows = [x for x in f["rows"] if not x["sink"]]
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
        y = np.arange(len(rows))[::-1]
        labels = [f"{x['stage']}: {ascii_label(x['step'])}" for x in rows]
        ax.barh(y, [x["kept"] for x in rows], color="#3b8a5a", label="kept")
        ax.barh(y, [x["dropped_total"] for x in rows], left=[x["kept"] for x in rows], color="#c8553d", label="dropped")
        ax.set_yticks(y, labels)
        ax.set_xlabel("documents")
        ax.set_title("Funnel: kept and dropped per step")
        ax.legend(loc="lower right")
        out["funnel"] = _png(fig)
        reasons = f.get("drop_reasons") or {}
        if reasons:
            items = list(reasons.items())[:20]
            fig, ax = plt.subplots(figsize=(8, 0.3 * len(items) + 1.2))
            ax.barh(np.arange(len(items))[::-1], [v for _, v in items], color="#c8553d")
            ax.set_yticks(np.arange(len(items))[::-1], [ascii_label(k) for k, _ in items])
            ax.set_xlabel("documents dropped")
            ax.set_title("Drop reasons")
            out["drop_reasons"] = _png(fig)
    s = r["sources"]
    after = s.get("after") or {}
    if s.get("variant_step") or (after and set(after.get("tier", {})) != {"absent"}):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for ax, what in zip(axes, ("variant", "tier")):
            b, a = s["before"][what], after.get(what, {})
            keys = list(b) + [k for k in a if k not in b]
            x = np.arange(len(keys))
            ax.bar(x - 0.2, [b.get(k, 0) for k in keys], 0.4, label="at policy step", color="#7a9cc6")
            ax.bar(x + 0.2, [a.get(k, 0) for k in keys], 0.4, label="kept", color="#2f5d8a")
            ax.set_xticks(x, [ascii_label(k) for k in keys])
            ax.set_title(f"{what} mix")
            ax.set_ylabel("documents")
            ax.legend()
        out["variant_mix"] = _png(fig)
    if after.get("source"):
        fig, ax = plt.subplots(figsize=(5, 2.8))
        keys = list(after["source_tier"])
        ax.bar(range(len(keys)), list(after["source_tier"].values()), color="#2f5d8a")
        ax.set_xticks(range(len(keys)), [ascii_label(k) for k in keys], rotation=20)
        ax.set_ylabel("documents")
        ax.set_title("Documents kept per source and tier")
        out["source_tier"] = _png(fig)
    h = r["lengths"].get("doc_chars_hist")
    if h:
        out["doc_lengths"] = _hist_png(plt, h, "Document length (characters)", "characters (bucket upper bound)",
                                       None if not other else (other["lengths"].get("doc_chars_hist")))
    sh = r["shards"]
    if sh.get("present"):
        out["chunk_lengths"] = _hist_png(plt, sh["chunk_hist"], "Chunk length (tokens)", "tokens (bucket upper bound)",
                                         None if not other or not other["shards"].get("present") else other["shards"]["chunk_hist"],
                                         marks={f"<={p['max_len']}": f"phase max_len {p['max_len']}" for p in sh["phases"].values()})
        fig, ax = plt.subplots(figsize=(8, 3))
        keys = list(sh["datasets"])
        if other and other["shards"].get("present"):
            keys += [k for k in other["shards"]["datasets"] if k not in keys]
        x = np.arange(len(keys))
        counted = [sh["datasets"].get(k, {}).get("tokens", 0) for k in keys]
        meta = [((sh.get("meta") or {}).get("datasets", {}).get(k) or {}).get("tokens", 0) for k in keys]
        if other and other["shards"].get("present"):
            ax.bar(x - 0.2, counted, 0.4, label="A: counted in shards", color="#2f5d8a")
            ax.bar(x + 0.2, [other["shards"]["datasets"].get(k, {}).get("tokens", 0) for k in keys], 0.4,
                   label="B: counted in shards", color="#d9a13b")
        else:
            ax.bar(x - 0.2, counted, 0.4, label="counted in shards", color="#2f5d8a")
            ax.bar(x + 0.2, meta, 0.4, label="meta.json", color="#9bb7d4")
        ax.set_xticks(x, keys)
        ax.set_ylabel("tokens")
        ax.set_title("Tokens per source and tier")
        ax.legend()
        out["tokens"] = _png(fig)
    d = r["dedup"]
    if d.get("cluster_sizes"):
        fig, ax = plt.subplots(figsize=(6, 3))
        ks = list(d["cluster_sizes"])
        ax.bar(range(len(ks)), list(d["cluster_sizes"].values()), color="#6b5b95")
        ax.set_xticks(range(len(ks)), ks)
        ax.set_yscale("log")
        ax.set_xlabel("near-duplicate cluster size (1 = unique)")
        ax.set_ylabel("kept documents")
        ax.set_title("Cluster sizes")
        out["cluster_sizes"] = _png(fig)
    return out


def _hist_png(plt, h: dict, title: str, xlabel: str, other: dict | None = None, marks: dict | None = None) -> str:
    import numpy as np

    keys = list(h)
    used = [i for i, k in enumerate(keys) if h[k] or (other or {}).get(k) or k in (marks or {})]
    if used:  # drop the empty buckets at both ends
        keys = keys[max(0, used[0] - 1):used[-1] + 2]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(8, 3))
    if other:
        ax.bar(x - 0.2, [h[k] for k in keys], 0.4, label="A", color="#2f5d8a")
        ax.bar(x + 0.2, [other.get(k, 0) for k in keys], 0.4, label="B", color="#d9a13b")
        ax.legend()
    else:
        ax.bar(x, [h[k] for k in keys], color="#2f5d8a")
    for k, label in (marks or {}).items():
        if k in keys:
            i = keys.index(k)
            ax.axvline(i + 0.5, color="#c8553d", linestyle="--", linewidth=1)
            ax.text(i + 0.45, ax.get_ylim()[1] * 0.95, label, rotation=90, va="top", ha="right", color="#c8553d", fontsize=8)
    ax.set_xticks(x, keys, rotation=30)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    return _png(fig)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK TC","Microsoft JhengHei",sans-serif;
margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2a7a3a;font-weight:bold}.bad{color:#b3261e;font-weight:bold}.absent{color:#8a6d00}
img{max-width:100%;display:block;margin:.5em 0}
.sample{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0;line-height:1.8}
.sample .head{font-size:.85em;color:#555}
mark{background:#ffd54f;border-radius:3px;padding:0 .1em}
"""


def _table(headers: list[str], rows: list[list]) -> str:
    """An HTML table: numbers right-aligned, strings escaped, 1-tuples (markup,) inserted as they are."""
    h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
    body = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, tuple):
                cells.append(f"<td>{v[0]}</td>")
            elif isinstance(v, str):
                cells.append(f"<td>{html.escape(v)}</td>")
            else:
                cells.append(f"<td class='n'>{_n(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{h}</tr>{''.join(body)}</table>"


def _img(pngs: dict, name: str, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{pngs[name]}'>" if name in pngs else ""


def render_html(r: dict, comparison: dict | None = None, other: dict | None = None) -> str:
    """The whole report as one HTML document (plots inline), optionally with the differences to run B."""
    pngs = plots(r, other)
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='zh-Hant-TW'><head><meta charset='utf-8'>"
             f"<title>twbert inspect {e(r['run'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>twbert inspect: {e(r['run'])}</h1>"]
    n_bad = sum(not c["ok"] for c in r["checks"])
    parts.append("<p>" + ", ".join(f"{e(k)}: " + ("<span class='ok'>yes</span>" if v else "<span class='absent'>absent</span>")
                                   for k, v in r["present"].items()) + "</p>")
    parts.append(f"<p>{'<span class=ok>all checks pass</span>' if not n_bad else f'<span class=bad>{n_bad} check(s) failed</span>'}"
                 f" ({len(r['checks'])} checks, below).</p>")

    parts.append("<h2>Funnel</h2>")
    f = r["funnel"]
    if f.get("present"):
        parts.append(_img(pngs, "funnel", "funnel plot") + _img(pngs, "drop_reasons", "drop reasons plot"))
        parts.append(_table(["stage", "step", "read", "kept", "dropped", "drop reasons", "ok"], [
            [x["stage"], ascii_label(x["step"]), x["read"], "(written)" if x["sink"] else x["kept"], x["dropped_total"],
             ", ".join(f"{k}={v:,}" for k, v in x["dropped"].items() if v),
             (("<span class='ok'>✓</span>",) if x["reconciles"] else ("<span class='bad'>✗</span>",))]
            for x in f["rows"]]))
    else:
        parts.append("<p class='absent'>absent: no stats.json</p>")

    parts.append("<h2>Sources and variants</h2>")
    s = r["sources"]
    after = s.get("after")
    if after:
        parts.append(_table(["source", "documents", "characters"],
                            [[k, v, after["chars_by_source"].get(k)] for k, v in after["source"].items()]))
        parts.append(_img(pngs, "source_tier", "documents per source and tier"))
    if "variant_mix" in pngs:
        parts.append(_img(pngs, "variant_mix", "variant and tier mix"))
        for what in ("variant", "tier"):
            parts.append(_table([what, "at the policy step", "kept"],
                                [[k, x, y] for k, x, y in _mix_rows(s["before"][what], (after or {}).get(what, {}))]))
        if s["before"]["converted"] or (after or {}).get("converted"):
            parts.append("<p>Converted to Taiwan form:</p>" + _table(["from", "at the policy step", "kept"], [
                [k, x, y] for k, x, y in _mix_rows(s["before"]["converted"], (after or {}).get("converted", {}))]))
    else:
        parts.append("<p class='absent'>variants and tiers: absent (no variant step in this build)</p>")
    if s["before"].get("pii"):
        parts.append("<p>PII replaced: " + e(", ".join(f"{k} {_n(v)}" for k, v in s["before"]["pii"].items())) + "</p>")
    if s.get("domains", {}).get("top"):
        parts.append(f"<p>Top domains ({s['domains']['distinct']:,} distinct):</p>"
                     + _table(["domain", "documents"], [[k, v] for k, v in s["domains"]["top"].items()]))

    parts.append("<h2>Dedup</h2>")
    d = r["dedup"]
    if d.get("present"):
        if d.get("build"):
            b = d["build"]
            parts.append(f"<p>{b['read']:,} read, {b['removed']:,} near-duplicates removed ({_pct(b['removed'], b['read'])}), "
                         f"{b['kept']:,} kept; {b['clusters']:,} clusters.</p>")
        parts.append(_img(pngs, "cluster_sizes", "cluster sizes"))
        rates = d.get("near_duplicate_rate") or {}
        if rates:
            parts.append(_table(["when", "folder", "rate", "95% CI", "sample", "documents"], [
                [k, x["folder"], f"{x['rate']:.1%}", f"{max(0.0, x['ci95'][0]):.1%} – {min(1.0, x['ci95'][1]):.1%}", x["sample"], x["documents"]]
                for k, x in rates.items()]))
    else:
        parts.append("<p class='absent'>absent: the build ran without dedup</p>")

    parts.append("<h2>Lengths and tokens</h2>")
    dc = r["lengths"].get("doc_chars")
    if dc and dc.get("count"):
        parts.append(_table(["documents", "mean", "median", "p90", "p99", "min", "max"],
                            [[dc["count"], dc["mean"], dc["p50"], dc["p90"], dc["p99"], dc["min"], dc["max"]]]))
        parts.append(_img(pngs, "doc_lengths", "document length histogram"))
    sh = r["shards"]
    if sh.get("present"):
        parts.append(_img(pngs, "chunk_lengths", "chunk length histogram"))
        parts.append(_table(["max_len", "chunks that fit", "chunks cut", "sequences", "mean tokens/sequence", "max_len used"], [
            [p["max_len"], p["chunks_fit"], p["chunks_cut"], p["sequences"], p["mean_sequence_tokens"], f"{p['fill']:.1%}"]
            for p in sh["phases"].values()]))
        parts.append(_img(pngs, "tokens", "tokens per source and tier"))
        meta, st = sh.get("meta") or {}, sh.get("stats") or {}
        parts.append(_table(["dataset", "documents", "chunks", "tokens counted", "meta.json", "stats.json"], [
            [k, v["documents"], v["chunks"], v["tokens"], meta.get("datasets", {}).get(k, {}).get("tokens"),
             st.get("datasets", {}).get(k)] for k, v in sh["datasets"].items()]
            + [["all", sh["counted"]["documents"], sh["counted"]["chunks"], sh["counted"]["tokens"], meta.get("tokens"), st.get("tokens")]]))
    else:
        parts.append("<p class='absent'>shards: absent (build with --tokenizer)</p>")

    if r["samples"]:
        parts.append("<h2>Samples</h2><p>Seeded documents; highlighted spans are what the trainer would mask "
                     "(n-gram whole-word masking, the default masking config), shown with their original text.</p>")
    for smp in r["samples"]:
        head = " · ".join(e(str(x)) for x in (smp["id"], smp["source"], smp.get("tier"), smp.get("title") or smp.get("url"),
                                                  f"{smp['chars']:,} chars") if x)
        mp = smp.get("mask_preview")
        if mp:
            body = "".join(f"<mark title='masked'>{e(t)}</mark>" if m else e(t) for t, m in mp["segments"])
            head += (f" · masked {mp['masked_tokens']} of {mp['tokens']} tokens ({mp['replaced']['mask']} [MASK], "
                     f"{mp['replaced']['random']} random, {mp['replaced']['unchanged']} unchanged)")
        else:
            body = e(smp["excerpt"]) + ("…" if smp["chars"] > len(smp["excerpt"]) else "")
        parts.append(f"<div class='sample'><div class='head'>{head}</div>{body.replace(chr(10), '<br>')}</div>")

    parts.append("<h2>Checks</h2>")
    parts.append(_table(["ok", "check", "detail"], [
        [("<span class='ok'>✓</span>",) if c["ok"] else ("<span class='bad'>✗</span>",), c["name"], c["detail"]]
        for c in r["checks"]]))

    if comparison is not None:
        parts.append(f"<h2>Differences: A = {e(comparison['a'])}, B = {e(comparison['b'])}</h2>")
        if comparison["same"]:
            parts.append("<p>no differences</p>")
        else:
            for title, keep in (("What changed", True), ("Every other number that differs", False)):
                rows = [x for x in comparison["differences"] if bool(x.get("headline")) == keep]
                parts.append(f"<h3>{title} ({len(rows)})</h3>" + _table(["section", "number", "A", "B", "B − A", "change"], [
                    [x["section"], x["key"].split(".", 1)[-1], x["a"], x["b"], x.get("delta"),
                     f"{x['relative']:+.1%}" if "relative" in x else ("new" if x["a"] is None else "gone" if x["b"] is None else "-")]
                    for x in rows]))
    parts.append("</body></html>\n")
    return "\n".join(parts)

"""The plots of the HTML report: matplotlib (Agg) PNGs, base64, from the report's numbers.

Labels are ASCII (step names lose their emoji): a machine without a CJK font would draw Chinese as boxes.
"""

from __future__ import annotations

import base64
import io

from twbert.inspection.sections import _has_variants, ascii_label


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
    if _has_variants(r):
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

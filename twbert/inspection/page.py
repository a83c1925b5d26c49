"""The HTML renderer of the section model (model.py): one self-contained offline file.

The plots are embedded as base64 PNG (plots.py) and the page holds no script, stylesheet or font from
elsewhere, so it opens the same on an air-gapped machine. Chinese text (samples, titles) is HTML text,
which the browser renders with its own fonts.
"""

from __future__ import annotations

import html

from twbert.inspection.model import Excerpt, Hist, Mark, Note, Plot, Section, Table, number

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK TC","Microsoft JhengHei",sans-serif;
margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:bold;padding:.3em 0}
.ok{color:#2a7a3a;font-weight:bold}.bad{color:#b3261e;font-weight:bold}.absent{color:#8a6d00}
img{max-width:100%;display:block;margin:.5em 0}
.sample{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0;line-height:1.8}
.sample .head{font-size:.85em;color:#555}
mark{background:#ffd54f;border-radius:3px;padding:0 .1em}
"""
e = html.escape


def _cell(v) -> str:
    if isinstance(v, Mark):
        return "<td><span class='ok'>✓</span></td>" if v.ok else "<td><span class='bad'>✗</span></td>"
    if isinstance(v, str):
        return f"<td>{e(v)}</td>"
    return f"<td class='n'>{number(v)}</td>"


def _table(t: Table) -> str:
    cap = f"<caption>{e(t.title)}</caption>" if t.title else ""
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in t.rows)
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _img(pngs: dict, name: str, alt: str) -> str:
    return f"<img alt='{e(alt)}' src='data:image/png;base64,{pngs[name]}'>" if name in pngs else ""


def _block(b, pngs: dict) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Note):
        return f"<p class='{b.kind}'>{e(b.text)}</p>" if b.kind else f"<p>{e(b.text)}</p>"
    if isinstance(b, Plot):
        return _img(pngs, b.name, b.alt)
    if isinstance(b, Hist):
        if b.plot in pngs:
            return _img(pngs, b.plot, b.title)
        return _table(Table(["bucket", "count"], [[k, v] for k, v in b.buckets.items()], title=b.title))
    if isinstance(b, Excerpt):
        body = "".join(f"<mark title='masked'>{e(t)}</mark>" if m else e(t) for t, m in b.runs)
        cap = f" · {e(b.caption)}" if b.caption else ""
        return f"<div class='sample'><div class='head'>{e(b.head)}{cap}</div>{body.replace(chr(10), '<br>')}</div>"
    raise TypeError(f"no HTML for {type(b).__name__}")


def render(sections: list[Section], pngs: dict[str, str]) -> str:
    """The page: the first section's title is the page's; `pngs` {name: base64 PNG} holds the plots."""
    title = sections[0].title if sections else "twbert inspect"
    parts = [f"<!DOCTYPE html><html lang='zh-Hant-TW'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for i, sec in enumerate(sections):
        parts.append(f"<h1>{e(sec.title)}</h1>" if i == 0 else f"<h2>{e(sec.title)}</h2>")
        parts.extend(_block(b, pngs) for b in sec.blocks)
    parts.append("</body></html>\n")
    return "\n".join(parts)

"""The terminal renderer of the section model (model.py): rich tables, notes, text histograms."""

from __future__ import annotations

from twbert.inspection.model import Excerpt, Hist, Mark, Note, Plot, Section, Table, number

MASK_OPEN, MASK_CLOSE = "［", "］"
_STYLE = {"absent": "yellow", "ok": "green", "bad": "red", "": None}


def _cell(v):
    from rich.text import Text

    if isinstance(v, Mark):
        return Text("✓", style="green") if v.ok else Text("✗", style="red")
    if isinstance(v, str):
        return Text(v)  # never markup: step names and documents may hold [brackets]
    return Text(number(v))


def text_hist(h: dict, width: int = 40) -> str:
    top = max(h.values()) or 1
    rows = list(h.items())
    # trim empty buckets at both ends, keep the ones between
    while rows and not rows[-1][1]:
        rows.pop()
    while rows and not rows[0][1]:
        rows.pop(0)
    return "\n".join(f"  {k:>8} {v:>10,} {'█' * round(width * v / top)}" for k, v in rows)


def _table(t: Table):
    from rich.table import Table as RichTable

    out = RichTable(title=t.title or None, title_justify="left")
    numeric = [all(not isinstance(r[i], str) for r in t.rows) if t.rows else False for i in range(len(t.columns))]
    for col, num in zip(t.columns, numeric):
        out.add_column(col, justify="right" if num else "left")
    for row in t.rows:
        out.add_row(*[_cell(v) for v in row])
    return out


def render(sections: list[Section], console=None) -> None:
    from rich.console import Console
    from rich.text import Text

    c = console or Console()
    for i, sec in enumerate(sections):
        if i == 0:
            c.rule(Text(sec.title, style="bold"))
        else:
            c.print(Text(sec.title, style="bold underline"))
        for b in sec.blocks:
            if isinstance(b, Table):
                if b.fold is not None and len(b.rows) > b.fold:
                    c.print(Text(b.fold_note))
                else:
                    c.print(_table(b))
            elif isinstance(b, Note):
                c.print(Text(b.text, style=_STYLE.get(b.kind)))
            elif isinstance(b, Hist):
                c.print(Text(b.title, style="bold"))
                c.print(text_hist(b.buckets))
            elif isinstance(b, Excerpt):
                c.print(Text("\n" + b.head, style="bold"))
                if b.caption:
                    c.print(Text(b.caption))
                text = Text()
                for seg, masked in b.runs:
                    if masked:
                        core = seg.rstrip()
                        text.append(MASK_OPEN + core + MASK_CLOSE, style="bold reverse")
                        text.append(seg[len(core):])
                    else:
                        text.append(seg)
                c.print(text)
            elif isinstance(b, Plot):
                pass  # pictures are the HTML's; the terminal shows the same numbers as tables

"""The section model of `twbert inspect`: what the report shows, built once, drawn by two renderers.

`sections.build(report)` turns the numbers (`numbers.inspect_run`, the --json dict) into a list of
`Section`s; `terminal.render` draws them with rich, `page.render` as one offline HTML file. Neither
renderer computes or words anything of its own beyond layout.

A section is a title and blocks, in order:

- `Table`: columns and rows of cells. A cell is a number (right-aligned, thousands separated), a string,
  `Mark(ok)` (✓ / ✗), or None ("-"). `fold`: on the terminal, a table longer than this is replaced by a
  one-line note (the HTML shows every row).
- `Note`: a line of text; `kind` "absent", "ok" or "bad" colours it.
- `Hist`: a histogram {bucket: count}: text bars on the terminal, the plot `plot` in HTML.
- `Plot`: a plot, HTML only (`plots.plots` draws it from the report).
- `Excerpt`: a document: a head line and its text as runs [(text, marked)]; marked runs are masked spans.

To add a section: write a function `report -> Section | None` in sections.py and list it in `build`;
the numbers it needs go into the report dict (numbers.py), so --json carries them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Mark:
    ok: bool


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    title: str = ""
    fold: int | None = None
    fold_note: str = ""


@dataclass
class Note:
    text: str
    kind: str = ""  # "", "absent", "ok", "bad"


@dataclass
class Hist:
    buckets: dict[str, int]
    title: str
    plot: str = ""


@dataclass
class Plot:
    name: str
    alt: str


@dataclass
class Excerpt:
    head: str
    runs: list[tuple[str, bool]]
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> Section:
        self.blocks.extend(b for b in blocks if b is not None)
        return self


def number(v) -> str:
    """How every number is shown: thousands separated, floats to 4 significant digits below 1."""
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return f"{int(v):,}"


def pct(k, n) -> str:
    return f"{100 * k / n:.1f}%" if n else "-"

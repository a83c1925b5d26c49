"""`twbert inspect`: the numbers of a build (numbers.py, removed.py), the sections they make (model.py,
sections.py), and two renderers of those sections (terminal.py, page.py with plots.py)."""

from __future__ import annotations

from twbert.inspection.numbers import FORMAT, compare, flatten, inspect_run

__all__ = ["FORMAT", "compare", "flatten", "inspect_run", "print_report", "render_html"]


def print_report(report: dict, console=None, comparison: dict | None = None) -> None:
    """The report (and the differences to run B) on the terminal."""
    from twbert.inspection import sections, terminal

    secs = sections.build(report)
    if comparison is not None:
        secs.append(sections.differences(comparison))
    terminal.render(secs, console)


def render_html(report: dict, comparison: dict | None = None, other: dict | None = None) -> str:
    """The report as one offline HTML page; `other` (run B's report) is overlaid on the plots."""
    from twbert.inspection import page, plots, sections

    secs = sections.build(report)
    if comparison is not None:
        secs.append(sections.differences(comparison, fold=None))
    return page.render(secs, plots.plots(report, other))

"""The funnel: read / kept / dropped-by-reason for every step, from datatrove's per-task stats.

The one place it is computed: `twbert build` and `twbert dedup against` write it to OUT/stats.json
(`collect`), and `twbert inspect` recomputes it from stats.json's per-step totals (`from_stats`).

Every twbert step records `total`, `forwarded`, `dropped` and `dropped_<reason>` (docs/architecture.md).
The per-task files `logs/<stage>/stats/NNNNN.json` are summed here (datatrove's `PipelineStats`) rather
than read from datatrove's own `stats.json`, because datatrove rewrites that file with only the tasks a
rerun executed: after a resumed build it would undercount everything the first run did.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path


def merge_stage(stage_logs: Path) -> list[dict]:
    """Sum the per-task stats of one stage: [{"name": step, "stats": {key: total}}] in pipeline order."""
    from datatrove.utils.stats import PipelineStats

    merged = PipelineStats()
    for f in sorted((Path(stage_logs) / "stats").glob("*.json")):
        merged += PipelineStats.from_json(json.loads(f.read_text(encoding="utf-8")))
    # a stage of one task is never added up: its values stay as read (a number, or a dict with "total")
    return [{"name": step.name, "stats": {key: m.total if hasattr(m, "total") else _total(m) for key, m in step.stats.items()}}
            for step in merged.stats]


def step_label(name: str) -> str:
    """'📖 - READER: 📚 zhwiki dump' -> 'zhwiki dump': datatrove's names carry a type and emoji."""
    name = name.split(": ", 1)[-1]
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("So", "Mn", "Cf")).strip()


def funnel_rows(stage: str, steps: list[dict]) -> list[dict]:
    """One row per step that reads documents: {stage, step, read, kept, dropped: {reason: n}, stats}."""
    rows = []
    for step in steps:
        values = {k: _total(v) for k, v in step["stats"].items()}
        if "total" not in values:
            continue  # writers and other steps that neither read nor drop documents
        read = int(values.get("total", 0))
        # datatrove writers count `total` for what they wrote and pass every document on.
        kept = read if "WRITER" in step["name"] else int(values.get("forwarded", 0))
        dropped = {k[len("dropped_"):]: int(v) for k, v in sorted(values.items()) if k.startswith("dropped_")}
        unexplained = read - kept - sum(dropped.values())
        if unexplained:
            # Never hide a loss: a step whose counts don't add up shows it in the funnel and in stats.json.
            dropped["UNEXPLAINED"] = unexplained
        extra = {k: v for k, v in sorted(values.items())
                 if k not in ("total", "forwarded", "dropped") and not k.startswith("dropped_")}
        rows.append({"stage": stage, "step": step_label(step["name"]), "read": read, "kept": kept,
                     "dropped": dropped, "stats": extra})
    return rows


def _total(v) -> float:
    # datatrove stores a metric as its total when it is all there is, else as {"total": ..., "mean": ...}.
    return v["total"] if isinstance(v, dict) else v


def reconciles(row: dict) -> bool:
    """kept + dropped == read, with every dropped document given a reason."""
    return "UNEXPLAINED" not in row["dropped"] and row["kept"] + sum(row["dropped"].values()) == row["read"]


def from_stats(stats: dict) -> list[dict]:
    """The funnel rows of a stats.json, computed again from its per-step totals ("stages");
    a stats.json without them gives its "funnel" as written."""
    if not stats.get("stages"):
        return list(stats.get("funnel", []))
    return [row for name, steps in stats["stages"].items() for row in funnel_rows(name, steps or [])]


def collect(stage_names: list[str], logs: Path) -> dict:
    """The content of OUT/stats.json for the given stages."""
    stages, funnel = {}, []
    for name in stage_names:
        steps = merge_stage(Path(logs) / name)
        stages[name] = steps
        funnel += funnel_rows(name, steps)
    return {"funnel": funnel, "stages": stages}


def print_funnel(stats: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="twbert build funnel", show_lines=False)
    for col, justify in (("stage", "left"), ("step", "left"), ("read", "right"), ("kept", "right"),
                         ("dropped", "right"), ("drop reasons", "left")):
        table.add_column(col, justify=justify)
    for row in stats["funnel"]:
        reasons = ", ".join(f"{k}={v:,}" for k, v in row["dropped"].items() if v)
        table.add_row(row["stage"], row["step"], f"{row['read']:,}", f"{row['kept']:,}",
                      f"{sum(row['dropped'].values()):,}", reasons)
    console.print(table)

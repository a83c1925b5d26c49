"""The build funnel: read / kept / dropped-by-reason for every step, from datatrove's per-task stats.

Every twbert step records `total`, `forwarded`, `dropped` and `dropped_<reason>` (docs/architecture.md).
The per-task files `logs/<stage>/stats/NNNNN.json` are merged here rather than read from datatrove's
own `stats.json`, because datatrove rewrites that file with only the tasks a rerun executed: after a
resumed build it would undercount everything the first run did.
"""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.utils.stats import PipelineStats


def _value(v) -> float:
    return v["total"] if isinstance(v, dict) else v


def merge_stage(stage_logs: Path) -> PipelineStats:
    """Sum the per-task stats of one stage (one entry per pipeline step)."""
    merged = PipelineStats()
    for f in sorted((stage_logs / "stats").glob("*.json")):
        merged += PipelineStats.from_json(json.loads(f.read_text(encoding="utf-8")))
    return merged


def funnel_rows(stage: str, stats: PipelineStats) -> list[dict]:
    rows = []
    for step in stats.stats:
        values = {k: _value(v.to_dict()) for k, v in step.stats.items()}
        if "total" not in values:
            continue  # writers and other steps that neither read nor drop documents
        read = int(values.get("total", 0))
        kept = int(values.get("forwarded", 0))
        dropped = {k[len("dropped_"):]: int(v) for k, v in sorted(values.items()) if k.startswith("dropped_")}
        unexplained = read - kept - sum(dropped.values())
        if unexplained:
            # Never hide a loss: a step whose counts don't add up shows it in the funnel and in stats.json.
            dropped["UNEXPLAINED"] = unexplained
        extra = {k: v for k, v in sorted(values.items())
                 if k not in ("total", "forwarded", "dropped") and not k.startswith("dropped_")}
        rows.append({"stage": stage, "step": step.name, "read": read, "kept": kept,
                     "dropped": dropped, "stats": extra})
    return rows


def collect(stage_names: list[str], logs: Path) -> dict:
    """The content of OUT/stats.json for the given stages."""
    stages, funnel = {}, []
    for name in stage_names:
        merged = merge_stage(Path(logs) / name)
        stages[name] = [s.to_dict() for s in merged.stats]
        funnel += funnel_rows(name, merged)
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

"""The build funnel: read / kept / dropped-by-reason for every step, from datatrove's per-task stats.

Every twbert step records `total`, `forwarded`, `dropped` and `dropped_<reason>` (docs/architecture.md).
The per-task files `logs/<stage>/stats/NNNNN.json` are merged here rather than read from datatrove's
own `stats.json`, because datatrove rewrites that file with only the tasks a rerun executed: after a
resumed build it would undercount everything the first run did.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path


def _value(v) -> float:
    # datatrove stores a metric as 0 when it never changed, else as {"total": ..., "mean": ...}.
    return v["total"] if isinstance(v, dict) else v


def merge_stage(stage_logs: Path) -> list[dict]:
    """Sum the per-task totals of one stage: [{"name": step, "stats": {key: total}}] in pipeline order."""
    steps: list[dict] = []
    for f in sorted((stage_logs / "stats").glob("*.json")):
        for i, step in enumerate(json.loads(f.read_text(encoding="utf-8"))):
            if i == len(steps):
                steps.append({"name": step["name"], "stats": {}})
            totals = steps[i]["stats"]
            for key, v in step["stats"].items():
                totals[key] = totals.get(key, 0) + _value(v)
    return steps


def step_label(name: str) -> str:
    """'📖 - READER: 📚 zhwiki dump' -> 'zhwiki dump': datatrove's names carry a type and emoji."""
    name = name.split(": ", 1)[-1]
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("So", "Mn", "Cf")).strip()


def funnel_rows(stage: str, steps: list[dict]) -> list[dict]:
    rows = []
    for step in steps:
        values = step["stats"]
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

"""A rerun repairs rather than trusts: completion markers over missing or damaged outputs are removed.

Before a build runs its stages, every task a stage's logs mark complete is checked: its stats file
must be there (the funnel is read from it) and its outputs must pass the stage's check
(`Stage.verify`, twbert/outputs.py). A task that fails loses its marker, so datatrove runs it
again, and every later stage runs again in full: each read what the repaired stage wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from twbert import outputs
from twbert.stage import Stage


def check_of(stage: Stage):
    if stage.verify is not None:
        return stage.verify
    from datatrove.pipeline.writers import JsonlWriter

    if stage.pipeline and isinstance(stage.pipeline[-1], JsonlWriter):
        return outputs.jsonl_writer(stage.pipeline[-1])
    return None


def task_problem(stage: Stage, logs: Path, rank: int) -> str | None:
    stats_file = logs / "stats" / f"{rank:05d}.json"
    try:
        task_stats = json.loads(stats_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"its stats {stats_file} are missing"
    except ValueError:
        return f"its stats {stats_file} are not valid JSON"
    verify = check_of(stage)
    return verify(rank, task_stats) if verify is not None else None


def repair(stages: list[Stage], logs: Path, say=None) -> dict[str, list[int]]:
    """Remove the completion markers of tasks to run again; returns {stage: [ranks]} of those removed."""
    say = say or (lambda msg: print(f"twbert build: {msg}", file=sys.stderr))
    removed: dict[str, list[int]] = {}
    upstream_changed = False
    for stage in stages:
        completions = logs / stage.name / "completions"
        done = sorted(int(p.name) for p in completions.glob("*") if p.name.isdigit()) if completions.is_dir() else []
        if upstream_changed:
            if done:
                say(f"{stage.name}: every task runs again: an earlier stage's outputs changed")
            bad = done
        else:
            bad = []
            for rank in done:
                why = task_problem(stage, logs / stage.name, rank)
                if why:
                    say(f"{stage.name} task {rank} runs again: {why}")
                    bad.append(rank)
        for rank in bad:
            (completions / f"{rank:05d}").unlink(missing_ok=True)
        if bad:
            removed[stage.name] = bad
            upstream_changed = True
    return removed

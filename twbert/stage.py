"""A build stage: one datatrove pipeline with its own task count and logging dir.

The stage modules (pipeline/, shards/) return lists of these; `twbert.build` runs them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Stage:
    name: str
    pipeline: list
    tasks: int
    # Executor arguments that differ from the config's for this stage (e.g. workers=1 for a merge).
    executor_overrides: dict = field(default_factory=dict)
    # How a rerun checks a completed task's outputs before trusting its completion marker:
    # verify(rank, task_stats) -> None if intact, else why not (twbert/outputs.py). None: a stage
    # ending in a datatrove JsonlWriter gets `outputs.jsonl_writer`; others are trusted.
    verify: Callable[[int, list], str | None] | None = None
    # Whether the stage has work left, asked just before it runs: local and Ray skip a stage that
    # says no (the dedup rounds after the clusters settled); on Slurm, planned ahead, its tasks
    # find out themselves and do nothing.
    needed: Callable[[], bool] | None = None

"""Checks that a finished datatrove task's outputs are still there and whole.

datatrove skips every task with a completion marker (`logs/<stage>/completions/<rank>`), trusting
that what the task wrote is intact. A build killed while a disk filled, files deleted or copied back
by hand, a second build into the same OUT: all leave markers over missing or damaged outputs. So
before a stage runs, `twbert.repair` asks the stage to check each completed task (`Stage.verify`),
and a task whose outputs fail the check runs again.

A check is `verify(rank, task_stats) -> str | None`: None when the outputs of task `rank` are
intact, else why not (named by file). `task_stats` is that task's datatrove stats
(`logs/<stage>/stats/<rank>.json`: one `{"name", "stats"}` entry per pipeline step), so a check can
compare what is on disk with what the task reported writing. Checks read what they check to the end
(a gzip stream to its CRC), but never decode more than they must.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable

Verify = Callable[[int, list], "str | None"]


def jsonl_writer(writer, step: int = -1) -> Verify:
    """The check of a stage whose step `step` is a datatrove JsonlWriter writing `${rank}` files:
    the rank's file exists when the task wrote documents, reads to the end, and holds as many lines
    as the writer counted."""
    from string import Template

    template: Template = writer.output_filename
    folder = writer.output_folder

    def verify(rank: int, task_stats: list) -> str | None:
        name = template.safe_substitute(rank=str(rank).zfill(5))
        if "$" in name:  # named by document metadata: the task's files cannot be listed from here
            return None
        written = int(task_stats[step]["stats"].get("total", 0)) if task_stats else 0
        path = os.path.join(folder.path, name)
        if not folder.exists(name):
            return f"{path} is missing (the task wrote {written} documents)" if written else None
        try:
            with folder.open(name, "rb", compression=writer.compression) as f:
                lines = sum(1 for _ in f)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
            return f"{path} is truncated or corrupt ({type(e).__name__}: {e})"
        if lines != written:
            return f"{path} holds {lines} documents, the task wrote {written}"
        return None

    return verify

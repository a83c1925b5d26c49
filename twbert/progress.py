"""Build progress: one line per stage (tasks done / total, documents per second), not per-task logs.

datatrove logs every task's INFO lines to the terminal as well as to `OUT/logs/<stage>/logs/`. A build
of thousands of tasks buries what matters, so the local executor here keeps only warnings and errors
on the terminal (the task log files are unchanged), and a thread reports each stage's progress from
what datatrove writes anyway: `completions/` (one file per finished task) and `stats/` (per task).
On a terminal the line updates in place; otherwise a line is printed as tasks finish, at most every
`every` seconds, plus the stage's final line.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor

# loguru's format in datatrove: "2025-01-01 00:00:00.000 | INFO     | module:function:line - message"
_CHATTER = re.compile(r"^(\[NODE \d+\] )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| (TRACE|DEBUG|INFO|SUCCESS) ")


class QuietStream:
    """A stderr that drops datatrove's routine log lines and passes everything else through."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s: str) -> int:
        if _CHATTER.match(s):
            return len(s)
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def quiet_stderr():
    """Route loguru (and anything else writing to sys.stderr) through a QuietStream."""
    from datatrove.utils.logging import setup_default_logger

    real = sys.stderr
    sys.stderr = QuietStream(real)
    setup_default_logger()  # re-adds the loguru sink on the current sys.stderr
    try:
        yield
    finally:
        sys.stderr = real
        setup_default_logger()


def _peak_rss_reset() -> bool:
    """Reset this process's peak resident set (VmHWM) to its current size (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class QuietLocalExecutor(LocalPipelineExecutor):
    """LocalPipelineExecutor whose tasks (in worker processes too) keep routine logs off the terminal,
    and record what they cost: `usage/NNNNN.json` in the stage's logging dir (start and end time, CPU
    seconds of the process, peak resident MB during the task), for capacity planning (docs/scale.md)
    and benchmarks/bench_scale.py. Worker processes run several tasks, so the peak is reset at each
    task's start."""

    def _launch_run_for_rank(self, rank: int, ranks_q, completed=None, completed_lock=None):
        reset = _peak_rss_reset()
        start, cpu = time.time(), time.process_time()
        with quiet_stderr():
            out = super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
        usage = {"rank": rank, "start": start, "end": time.time(), "cpu_s": time.process_time() - cpu,
                 "peak_rss_mb": _peak_rss_mb() if reset else None}
        with self.logging_dir.open(f"usage/{rank:05d}.json", "w") as f:
            f.write(json.dumps(usage) + "\n")
        return out


def _documents(stats_file: Path) -> int:
    """Documents a finished task read: the sum over its readers (a stage may have several)."""
    try:
        steps = json.loads(stats_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    value = lambda v: int(v["total"] if isinstance(v, dict) else v)
    readers = [s.get("stats", {}) for s in steps if "READER" in s.get("name", "")]
    return sum(value(r.get("documents", r.get("total", 0))) for r in readers)


class StageProgress:
    """Polls a local stage's logging dir and prints its progress line."""

    def __init__(self, name: str, logs: Path, tasks: int, index: int, count: int, out=None, every: float = 10.0):
        self.name, self.logs, self.tasks = name, Path(logs), tasks
        self.prefix = f"[{index}/{count}] {name}"
        self.out = out or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.every = every
        self.docs: dict[str, int] = {}
        self.start = time.monotonic()
        self.done0 = self._done()
        self._stop = threading.Event()
        self._last = (-1, 0.0)

    def _done(self) -> int:
        d = self.logs / "completions"
        return len(list(d.iterdir())) if d.is_dir() else 0

    def line(self) -> str:
        done = self._done()
        stats = self.logs / "stats"
        if stats.is_dir():
            for f in stats.glob("*.json"):
                if f.name not in self.docs:
                    self.docs[f.name] = _documents(f)
        elapsed = time.monotonic() - self.start
        text = f"{self.prefix}: {done}/{self.tasks} tasks, {elapsed:,.0f} s"
        docs = sum(self.docs.values())
        if docs and done > self.done0:
            text += f", {docs:,} documents, {docs / max(elapsed, 1e-9):,.0f} docs/s"
        elif done == self.tasks and self.done0 == self.tasks:
            text += " (already complete)"
        return text

    def _show(self, final: bool = False):
        text = self.line()
        done = self._done()
        if self.tty:
            self.out.write("\r\x1b[K" + text + ("\n" if final else ""))
            self.out.flush()
        elif final or (done != self._last[0] and time.monotonic() - self._last[1] >= self.every):
            print(text, file=self.out, flush=True)
            self._last = (done, time.monotonic())

    def _loop(self):
        while not self._stop.wait(1.0):
            self._show()

    def __enter__(self):
        self.docs = {f.name: 0 for f in (self.logs / "stats").glob("*.json")} if (self.logs / "stats").is_dir() else {}
        self._last = (self._done(), time.monotonic())
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._show(final=True)
        return False


def skipped(names: list[str], first: int, count: int, out=None) -> None:
    """One line for a run of stages that had nothing left to do (e.g. dedup rounds after the clusters
    settled), instead of a line each."""
    if names:
        span = f"{first}" if len(names) == 1 else f"{first}-{first + len(names) - 1}"
        what = names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}"
        print(f"[{span}/{count}] {what}: skipped, nothing left to do", file=out or sys.stdout, flush=True)


@contextmanager
def stage(name: str, logs: Path, tasks: int, index: int, count: int, show: bool = True):
    """Progress for one stage while it runs (local and Ray stages block, so the thread sees it all)."""
    if not show:
        yield
        return
    with quiet_stderr(), StageProgress(name, logs, tasks, index, count):
        yield

"""`twbert build`: assemble the datatrove stages from the config, run them in order, print the funnel.

A build is a list of stages. Each stage is one datatrove pipeline with its own task count and
logging dir (`OUT/logs/<stage>`), so a rerun skips every task that already completed, and a stage
that needs the whole output of the one before (dedup clustering, index merging) waits for it. Work
that must happen once (merging MDS indexes) is a one-task stage too, so it runs on Slurm and Ray
exactly as it does locally.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from twbert import lifeline, progress
from twbert.errors import UsageError
from twbert.repair import repair
from twbert.runlock import RunLock
from twbert.stage import Stage


def plan(cfg: dict) -> list[Stage]:
    """The stages the config asks for, in order: ingest, then dedup, then shards."""
    from twbert.pipeline import ingest

    out = Path(cfg["out"])
    dedup_cfg = cfg.get("dedup") or {}
    dedup_on = bool(dedup_cfg.get("enabled", False))
    documents = out / "documents"
    ingest_out = out / "work" / "ingest" if dedup_on else documents

    stages = ingest.stages(cfg, ingest_out)
    if dedup_on:
        from twbert.pipeline import dedup

        stages += dedup.stages(cfg, ingest_out, documents, out / "work" / "dedup")
    if (cfg.get("shards") or {}).get("tokenizer"):
        from twbert.pipeline.removed import exclusion_writer
        from twbert.shards import writer

        stages += writer.stages(cfg, documents, out / "shards", lambda step: exclusion_writer(cfg, "shards", step))
    return stages


def make_executor(cfg: dict, stage: Stage, logging_dir: Path, depends=None):
    ex = cfg["executor"]
    kind = ex.get("type", "local")
    tasks = stage.tasks
    common = dict(pipeline=stage.pipeline, tasks=tasks, logging_dir=str(logging_dir))
    over = stage.executor_overrides
    if kind == "local":
        from twbert.progress import QuietLocalExecutor

        workers = over.get("workers", ex.get("workers", -1))
        return QuietLocalExecutor(**common, workers=workers, depends=depends)
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        args = dict(ex.get("slurm") or {})
        args.setdefault("time", "24:00:00")
        args.setdefault("job_name", f"twbert-{stage.name}")
        if "partition" not in args:
            raise UsageError("executor.type is slurm: set executor.slurm.partition in the config")
        return SlurmPipelineExecutor(**common, **args, depends=depends)
    if kind == "ray":
        try:
            from datatrove.executor.ray import RayPipelineExecutor
        except ImportError as e:
            raise UsageError(f"executor.type is ray but Ray is not importable ({e}); pip install 'twbert[ray]'") from None
        import ray

        if not ray.is_initialized():
            # address null starts a local Ray on this machine; "auto" joins the cluster `ray start` made.
            ray.init(address=ex.get("ray_address"), include_dashboard=False, log_to_driver=False)
        args = dict(ex.get("ray") or {})
        args.setdefault("workers", ex.get("workers", -1))
        return RayPipelineExecutor(**common, **args, depends=depends)
    raise UsageError(f"executor.type must be local, slurm or ray, not {kind!r}")


def run(cfg: dict) -> dict:
    """Run every stage and write OUT/stats.json, holding OUT's lock throughout. Returns the stats."""
    if not cfg.get("out"):
        raise UsageError("no output directory: pass --out DIR or set `out:` in the config")
    if not (cfg["inputs"].get("wiki") or cfg["inputs"].get("fineweb")):
        raise UsageError("no inputs: pass --wiki PATH and/or --fineweb PATH, or set inputs: in the config")
    out = Path(cfg["out"])
    with guarded(out):
        return _run(cfg, out)


@contextlib.contextmanager
def guarded(out: Path):
    """Around a command that runs datatrove into `out`: hold OUT/build.lock, make the processes it
    starts die with it, and let SIGTERM unwind like an error (docs/architecture.md, run safety)."""
    with RunLock(out, shlex.join(["twbert", *sys.argv[1:]])) as lock, _children_die_with_us(), _sigterm_unwinds(lock):
        yield


@contextlib.contextmanager
def _children_die_with_us():
    lifeline.activate()
    try:
        yield
    finally:
        lifeline.deactivate()


# The SIGTERM received, if any: the SystemExit its handler raises is lost when the signal lands in
# code whose exceptions Python ignores (an at-fork hook such as logging's _releaseLock, a finalizer),
# so the build also checks this between stages and on the way out.
_terminated: list[int] = []
# How long SIGTERM's unwinding may take before the build exits anyway: a datatrove pool caught while
# it starts can hang in its teardown. The lock record is cleared first; the children die with us.
TERM_GRACE_S = 20


@contextlib.contextmanager
def _sigterm_unwinds(lock: RunLock | None = None):
    """SIGTERM (Slurm's scancel, a container stop) unwinds like an error: the executor stops its pool
    and Manager, and the lock is released. Only the main thread can set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        if not _terminated and lock is not None:
            timer = threading.Timer(TERM_GRACE_S, _exit_now, (lock, 128 + signum))
            timer.daemon = True
            timer.start()
        _terminated.append(signum)
        raise SystemExit(128 + signum)

    _terminated.clear()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    _stop_if_terminated()


def _exit_now(lock: RunLock, code: int) -> None:
    print(f"twbert: the build did not stop within {TERM_GRACE_S} s of SIGTERM; exiting now", file=sys.stderr)
    lock.__exit__(None, None, None)
    os._exit(code)


def _stop_if_terminated() -> None:
    if _terminated:
        raise SystemExit(128 + _terminated[0])


def _run(cfg: dict, out: Path) -> dict:
    from twbert.pipeline import removed
    from twbert.pipeline.funnel import collect, print_funnel

    if removed.enabled(cfg):
        # There even when no step drops anything: an empty removed/ says so, a missing one does not.
        removed.root(cfg).mkdir(parents=True, exist_ok=True)
    stages = plan(cfg)
    logs = Path(cfg["executor"].get("logging_dir") or out / "logs")
    repair(stages, logs)
    # Slurm jobs are submitted at once and chained through `depends`; local and Ray stages block,
    # so they simply run one after the other.
    chained = cfg["executor"].get("type", "local") == "slurm"
    previous = None
    skipped: list[int] = []
    for i, stage in enumerate(stages):
        _stop_if_terminated()
        executor = make_executor(cfg, stage, logs / stage.name, depends=previous if chained else None)
        if chained:
            previous = executor
            continue
        if stage.needed is not None and not stage.needed():
            skipped.append(i)
            continue
        progress.skipped([stages[j].name for j in skipped], skipped[0] + 1 if skipped else 0, len(stages))
        skipped.clear()
        with progress.stage(stage.name, logs / stage.name, stage.tasks, i + 1, len(stages)):
            executor.run()
        if stage.name == "ingest" and i + 1 < len(stages):
            ran = collect([stage.name], logs)
            if not ran["funnel"] or ran["funnel"][-1]["kept"] == 0:
                print_funnel(ran)
                raise UsageError("no document survived ingest (see the funnel above for why); "
                                 "the later stages have nothing to read")
    progress.skipped([stages[j].name for j in skipped], skipped[0] + 1 if skipped else 0, len(stages))
    if previous is not None:
        previous.run()  # submits the whole chain; stats.json is complete once the jobs finish
        print(f"submitted {len(stages)} Slurm stages; rerun the same command after they finish for stats.json")
        return {}
    stats = collect([s.name for s in stages], logs)
    (out / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_funnel(stats)
    return stats

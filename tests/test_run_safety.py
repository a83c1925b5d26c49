"""Run safety of `twbert build`: one build per OUT at a time (a lock), and no process left behind
when a build is killed. Real `twbert build` processes on the embedded sample."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twbert import sample
from twbert.errors import UsageError

LOCK = "build.lock"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return sample.write(tmp_path_factory.mktemp("sample"), n_generated_pages=300, n_web=120)


def build_cmd(inputs, out, *extra):
    return [sys.executable, "-m", "twbert.cli", "build", "--wiki", str(inputs["wiki"]),
            "--fineweb", str(inputs["fineweb"]), "--out", str(out), *extra]


def wait_for(cond, what, proc=None, limit=300.0):
    """Poll `cond` until true; fail (with the process's output) if `proc` exits first or `limit` passes."""
    deadline = time.monotonic() + limit
    while not cond():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def holder(out: Path) -> dict:
    try:
        text = (out / LOCK).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return json.loads(text) if text.strip() else {}


def test_a_second_build_into_a_locked_out_fails_at_once(inputs, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(build_cmd(inputs, out, "--tasks", "2", "--workers", "1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Start the second build once the first holds the lock and is running tasks.
        wait_for(lambda: holder(out).get("pid") == first.pid and (out / "logs" / "ingest").exists(),
                 "the first build to start its tasks", first)
        second = subprocess.run(build_cmd(inputs, out, "--tasks", "2", "--workers", "1"),
                                capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first build finished before the second was refused: use a larger sample"
        assert second.returncode == 2, second.stderr
        err = second.stderr
        assert f"{out} is in use by another twbert build" in err, err
        assert f"pid {first.pid}" in err and socket.gethostname() in err, err
        assert "wait for it" in err, err
        assert not (out / "stats.json").exists()  # the second build ran nothing
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    # The lock is released: the record is cleared and a rerun takes the lock without a word about it.
    assert holder(out) == {}
    rerun = subprocess.run(build_cmd(inputs, out, "--tasks", "2", "--workers", "1"),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "stale" not in rerun.stderr + rerun.stdout


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    from twbert.runlock import RunLock, boot_id

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.joinpath(LOCK).write_text(json.dumps({
        "host": socket.gethostname(), "pid": dead.pid, "start_ticks": 1, "boot_id": boot_id(),
        "started": "2026-01-01T00:00:00Z", "command": "twbert build old"}), encoding="utf-8")
    with RunLock(tmp_path, "twbert build new"):
        assert holder(tmp_path)["pid"] == os.getpid()
        assert holder(tmp_path)["command"] == "twbert build new"
    msg = capsys.readouterr().err
    assert f"taking over the stale lock of pid {dead.pid}" in msg and "twbert build old" in msg, msg
    assert holder(tmp_path) == {}


def test_a_reused_pid_is_stale_too(tmp_path, capsys):
    from twbert.runlock import RunLock, boot_id, process_start

    # The record names a live pid (this one) but another start time: the pid was reused.
    tmp_path.joinpath(LOCK).write_text(json.dumps({
        "host": socket.gethostname(), "pid": os.getpid(), "start_ticks": process_start(os.getpid()) - 1,
        "boot_id": boot_id(), "started": "2026-01-01T00:00:00Z", "command": "twbert build old"}), encoding="utf-8")
    with RunLock(tmp_path, "twbert build new"):
        pass
    err = capsys.readouterr().err
    assert "taking over the stale lock" in err and "different start time" in err, err


def test_a_lock_held_in_this_process_refuses_a_second(tmp_path):
    from twbert.runlock import RunLock

    with RunLock(tmp_path, "first"):
        with pytest.raises(UsageError, match=f"in use by another twbert build: pid {os.getpid()} "):
            with RunLock(tmp_path, "second"):
                pass
    with RunLock(tmp_path, "third"):
        pass


def session_processes(sid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes in session `sid`, read from /proc: (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.append((int(entry.name), cmd))
    return found


def test_a_killed_build_leaves_no_process_behind(inputs, tmp_path):
    out = tmp_path / "out"
    # Its own session: children keep the session id after they are orphaned, so they can still be found.
    proc = subprocess.Popen(build_cmd(inputs, out, "--tasks", "2", "--workers", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # datatrove's LocalPipelineExecutor runs a multiprocess Manager and a forkserver with pool workers.
        # Wait for the pool workers: the forkserver forks them, so they carry its command line.
        wait_for(lambda: sum("forkserver" in c for _, c in session_processes(proc.pid)) >= 3,
                 "the build's manager, forkserver and pool workers", proc)
        children = [p for p in session_processes(proc.pid) if p[0] != proc.pid]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = session_processes(proc.pid)
        assert not left, f"left behind by the killed build (of {children}): {left}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigterm_stops_the_build_and_releases_the_lock(inputs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(build_cmd(inputs, out, "--tasks", "2", "--workers", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: holder(out).get("pid") == proc.pid and (out / "logs" / "ingest").exists(),
                 "the build to start its tasks", proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert holder(out) == {}, "the lock record was not cleared"
        deadline = time.monotonic() + 60
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session_processes(proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_dedup_against_takes_the_same_lock(tmp_path, capsys):
    from twbert.cli import main
    from twbert.runlock import RunLock

    out = tmp_path / "out"
    with RunLock(out, "twbert build (the holder)"):
        rc = main(["dedup", "against", str(tmp_path / "index"), str(tmp_path / "new"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{out} is in use by another twbert build" in err and "(the holder)" in err, err


def test_a_sigterm_whose_exit_was_swallowed_still_stops_the_build():
    """Python ignores exceptions raised in at-fork hooks and finalizers ("Exception ignored in
    _releaseLock"): a SIGTERM landing there must still end the build with 143, not exit 0."""
    from twbert import build

    with pytest.raises(SystemExit) as e:
        with build._sigterm_unwinds():
            try:
                signal.raise_signal(signal.SIGTERM)
            except SystemExit:
                pass  # what the interpreter does with it inside such a hook
    assert e.value.code == 128 + signal.SIGTERM

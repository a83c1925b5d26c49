"""One build per output directory at a time: the lock file OUT/build.lock.

Two builds writing one OUT interleave their task outputs and completion markers; the one that
finishes last can exit 0 over a mixture (near-duplicates left in documents/ and shards/). So a build
takes an exclusive `flock` on OUT/build.lock for its whole run and writes the holder's record into
it: host, pid, the pid's start time (from /proc, so a reused pid is not mistaken for the holder),
boot id, start time and command. A second build fails at once with a message naming the holder.

The kernel drops a flock when its holder dies, however it dies, so a lock left by a killed build is
free; its record is still there and is reported when the next build takes the lock over. The record
is also checked on its own: a holder on this host whose pid still runs with the same start time is
alive even if the flock was granted (a filesystem whose locks do not work), and so is a holder on
another host whose record was touched (a heartbeat every 30 s) in the last two minutes.

Shared filesystems: on NFS, Linux maps flock to POSIX byte-range locks that the server arbitrates
between clients (NFSv4, or v3 with lockd); Lustre and GPFS need their `flock` mount option (Lustre's
`localflock` only locks within one node). Where locks are node-local or unsupported, the heartbeat
still refuses a second build while the first is alive, but two builds started within a few seconds
on different nodes can both start. With `executor.type: slurm` the lock covers only the submitting
`twbert build` (it returns once the jobs are queued), not the Slurm jobs themselves.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from twbert.errors import UsageError

LOCK_NAME = "build.lock"
HEARTBEAT_S = 30
FRESH_S = 120
_open_fds: set[int] = set()  # closed in forked children: only the build itself holds its lock


def process_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks after boot (/proc/PID/stat field 22), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def holder_record(command: str) -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start_ticks": process_start(pid), "boot_id": boot_id(),
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command}


def holder_alive(rec: dict, age_s: float) -> tuple[bool, str]:
    """(is the recorded holder alive, why we think so)."""
    if rec.get("host") != socket.gethostname():
        if age_s < FRESH_S:
            return True, f"its record on {rec.get('host')} was updated {age_s:.0f} s ago"
        return False, f"its record on {rec.get('host')} has not been updated for {age_s:.0f} s"
    pid = rec.get("pid")
    if not isinstance(pid, int):
        return False, "the record names no process"
    if rec.get("boot_id") and rec.get("boot_id") != boot_id():
        return False, "this machine has rebooted since"
    start = process_start(pid)
    if start is None:
        return False, f"no process {pid} runs on this machine"
    if rec.get("start_ticks") is not None and start != rec["start_ticks"]:
        return False, f"pid {pid} now belongs to another process (a different start time)"
    return True, f"pid {pid} is running"


def describe(rec: dict) -> str:
    return (f"pid {rec.get('pid')} on {rec.get('host')}, started {rec.get('started')} "
            f"({rec.get('command')})")


def _close_in_child() -> None:
    for fd in list(_open_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _open_fds.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunLock:
    """`with RunLock(out, command):` holds OUT/build.lock for the block, or raises UsageError."""

    def __init__(self, out: str | Path, command: str):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _read(self, fd: int) -> tuple[dict, float]:
        data = os.pread(fd, 1 << 16, 0)
        age = time.time() - os.fstat(fd).st_mtime
        try:
            rec = json.loads(data) if data.strip() else {}
        except ValueError:
            rec = {"command": "(unreadable record)"}
        return (rec if isinstance(rec, dict) else {}), age

    def _busy(self, rec: dict) -> UsageError:
        what = describe(rec) if rec else "a build that has not written its record yet"
        return UsageError(
            f"{self.out} is in use by another twbert build: {what}. Two builds into one OUT mix their "
            f"outputs; wait for it to finish, or build into another --out. If that build is gone (killed on "
            f"another node whose locks this filesystem does not share), delete {self.path} and rerun.")

    def __enter__(self) -> RunLock:
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                rec, age = self._read(fd)
                alive, _ = holder_alive(rec, age) if rec else (True, "")
                if rec and not alive:
                    raise UsageError(
                        f"{self.out}: the lock of {describe(rec)} is still held, though that build is gone: "
                        f"a process it started holds it. Find it with `fuser {self.path}`, end it, and rerun.") from None
                raise self._busy(rec) from None
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                print(f"twbert: {self.path}: this filesystem does not support locks ({e.strerror}); relying "
                      f"on the holder record alone", file=sys.stderr)
            rec, age = self._read(fd)
            if rec:
                alive, why = holder_alive(rec, age)
                if alive:
                    raise self._busy(rec)
                print(f"twbert: taking over the stale lock of {describe(rec)}: {why}", file=sys.stderr)
            data = json.dumps(holder_record(self.command), ensure_ascii=False).encode("utf-8") + b"\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        _open_fds.add(fd)
        self._beat = threading.Thread(target=self._heartbeat, name="twbert-lock-heartbeat", daemon=True)
        self._beat.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.fd is not None:
            # An empty record is a free lock; the file stays, so no one can lock an unlinked copy.
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            _open_fds.discard(self.fd)
            os.close(self.fd)
            self.fd = None

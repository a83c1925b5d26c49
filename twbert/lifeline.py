"""The processes a build starts die with it, even when it is SIGKILLed.

datatrove's LocalPipelineExecutor starts, for every stage, a `multiprocess.Manager()` (a server
process forked from the build) and, with more than one worker, a `Pool` from the forkserver context:
a forkserver process (fork + exec of a fresh Python) that forks the pool workers. A build killed with
SIGKILL (the OOM killer, `kill -9`, a Slurm hard limit) runs no cleanup: the forkserver notices that
its pipe closed and exits, but the Manager serves forever and busy workers run their task to the end,
holding memory.

Linux's `prctl(PR_SET_PDEATHSIG)` makes the kernel signal a process when its parent dies, so every
process forked while a build runs sets it (an `os.register_at_fork` hook), and so does the
forkserver, which imports this module as a preload and hooks its own forks (the pool workers) the
same way. The parent's death is then the children's too, whatever killed it. Elsewhere than Linux
this does nothing. Ray and Slurm tasks are their schedulers' business, not this module's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

ENV = "TWBERT_LIFELINE"  # set in a build; the forkserver it starts inherits it
PR_SET_PDEATHSIG = 1
_state = {"active": False, "hooked": False, "parent": None}


def _prctl():
    # Loaded before any fork (CDLL(None): the symbols already in the process, libc's among them), so
    # a freshly forked child does not search for libc.
    if "prctl" not in _state:
        _state["prctl"] = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
    return _state["prctl"]


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; exit now if it already has."""
    prctl = _prctl()
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


def _before_fork() -> None:
    _state["parent"] = os.getpid()


def _after_fork_in_child() -> None:
    if _state["active"]:
        die_with_parent(_state["parent"])


def _hook() -> None:
    _prctl()
    if not _state["hooked"]:
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
        _state["hooked"] = True


def activate() -> None:
    """From now on, every process this one forks dies with it, and so do a forkserver's workers."""
    _hook()
    _state["active"] = True
    os.environ[ENV] = "1"
    try:
        from multiprocess import forkserver
    except ImportError:  # datatrove without multiprocess: nothing of it to guard
        return

    preload = list(getattr(forkserver._forkserver, "_preload_modules", None) or ["__main__"])
    if __name__ not in preload:
        forkserver.set_forkserver_preload([*preload, __name__])


def deactivate() -> None:
    """Forks after the build (in a long-lived process, e.g. the test runner) are left alone again."""
    _state["active"] = False
    os.environ.pop(ENV, None)


def _in_forkserver() -> bool:
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_code.co_filename.endswith("forkserver.py"):
            return True
        frame = frame.f_back
    return False


if os.environ.get(ENV) and _in_forkserver():
    # Imported as the forkserver's preload: it dies with the build, and so do the workers it forks.
    die_with_parent()
    _hook()
    _state["active"] = True

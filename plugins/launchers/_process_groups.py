"""A job's process group: tied to the process that started it, and stopped as one.

Every launcher starts a job's command with ``start_new_session=True``, so the job and all it
starts (torchrun's workers, subprocesses) form one process group, and with
``preexec_fn=stop_with_launcher()``, so that on Linux the kernel sends the job SIGTERM when
the process that started it dies (even by SIGKILL). :func:`stop_groups` ends such groups:
``launchers/local`` for a timeout or a closed sweep, :func:`plugins.launchers._remote.run_job`
on a node for a timeout or a cancel.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["stop_groups", "stop_with_launcher"]

_PR_SET_PDEATHSIG = 1


def stop_with_launcher() -> Callable[[], None] | None:
    """Linux: what the child runs before ``exec`` to be sent SIGTERM when this process (the
    thread that starts it) dies; elsewhere None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    launcher = os.getpid()

    def stop_with_launcher() -> None:  # in the child: nothing here may import or allocate much
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # the launcher died before the request was in place
            os.kill(os.getpid(), signal.SIGTERM)

    return stop_with_launcher


def stop_groups(processes: Sequence[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM to each process's group, SIGKILL to what is left after ``grace_s``; reap.

    Each process leads its own group (``start_new_session=True``). The wait ends early once
    every leader has exited; the SIGKILL still goes to each group, for stray children. The
    leaders are reaped only after the SIGKILL, so their group ids cannot be reused by another
    process in between. An interruption while waiting (a second Ctrl-C) skips to the SIGKILL.
    """
    alive = [process for process in processes if process.returncode is None]
    for process in alive:
        _signal_group(process, signal.SIGTERM)
    try:
        end = time.monotonic() + grace_s
        while any(not _leader_exited(p) for p in alive) and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        for process in alive:
            _signal_group(process, signal.SIGKILL)  # what outlived the grace, and stray children
            process.wait()


def _leader_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether ``process`` has exited, without reaping it (its group id stays reserved)."""
    options = os.WEXITED | os.WNOHANG | os.WNOWAIT
    try:
        return os.waitid(os.P_PID, process.pid, options) is not None
    except ChildProcessError:  # reaped already
        return True


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)

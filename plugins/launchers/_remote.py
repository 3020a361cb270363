"""What a launcher ships to where a job lands: run the job's command, report how it ended.

:func:`run_job` is the function the engines (submitit, Ray) run on a node. It starts the job's
``corelib run`` command as a fresh process, exactly as ``launchers/local`` does on this machine,
so a job lands in the same state wherever it runs. The process gets a session of its own (so the
whole tree, torchrun's workers included, can be stopped at once), and on Linux it is told to
stop when the engine's worker that started it dies (an engine may kill its worker outright).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from corelib.runs import Job

__all__ = ["STOP_GRACE_S", "run_job"]

STOP_GRACE_S = 0.5
"""How long a stopped job gets between SIGTERM and SIGKILL (its run record is written then)."""


def run_job(job: Job, cwd: str | None = None) -> tuple[int, bool]:
    """Run ``job.command()`` to its end or its timeout; ``(exit status, timed out)``.

    ``cwd``: the launching process's working directory, used where it exists on this node (a
    shared filesystem), so that relative config and run-directory paths mean the same there.
    Any interruption (Ctrl-C, an engine's cancel) stops the job's process tree before it
    propagates.
    """
    process = subprocess.Popen(
        job.command(python=sys.executable),
        cwd=cwd if cwd is not None and os.path.isdir(cwd) else None,
        start_new_session=True,
        preexec_fn=_stop_with_parent(),
    )
    try:
        return process.wait(timeout=job.timeout_s), False
    except subprocess.TimeoutExpired:
        _stop(process)
        return process.wait(), True
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group, then SIGKILL it after :data:`STOP_GRACE_S`."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


_PR_SET_PDEATHSIG = 1


@functools.cache
def _stop_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that makes the child get SIGTERM when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl  # looked up before the fork
    term = ctypes.c_ulong(signal.SIGTERM)
    option = ctypes.c_int(_PR_SET_PDEATHSIG)

    def set_death_signal() -> None:
        prctl(option, term)

    return set_death_signal

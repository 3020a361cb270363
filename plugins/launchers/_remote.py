"""What a launcher ships to where a job lands: run the job's command, report how it ended.

:func:`run_job` is the function the engines (submitit, Ray) run on a node. It starts the job's
``corelib run`` command as a fresh process, exactly as ``launchers/local`` does on this machine,
so a job lands in the same state wherever it runs; its stdout and stderr go to the job's
``launcher.log`` as they do there. The process gets a session of its own (so the
whole tree, torchrun's workers included, can be stopped at once), and on Linux it is told to
stop when the engine's worker that started it dies (an engine may kill its worker outright).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs

from corelib.runs import Job
from plugins.launchers._process_groups import stop_groups, stop_with_launcher
from plugins.launchers.local import LAUNCHER_LOG

__all__ = ["CANCEL_GRACE_S", "TIMEOUT_GRACE_S", "run_job", "shipped"]

TIMEOUT_GRACE_S = 5.0
"""How long a job past its timeout gets between SIGTERM and SIGKILL (to end its record)."""
CANCEL_GRACE_S = 0.5
"""The same for a cancelled job: the engine will soon kill the process that waits for it."""


def shipped(job: Job) -> Job:
    """``job`` as it is sent to a node: its run directory absolute, so its record lands where
    this process reads it whatever folder the job starts in there."""
    return attrs.evolve(job, run_dir=job.run_dir.absolute())


def run_job(job: Job, cwd: str | None = None) -> tuple[int, bool]:
    """Run ``job.command()`` to its end or its timeout; ``(exit status, timed out)``.

    ``cwd``: the launching process's working directory, used where it exists on this node (a
    shared filesystem), so that relative config and run-directory paths mean the same there.
    The job's output goes to ``RUN_DIR/launcher.log`` (what it printed before its record
    started, too: an import error on that node).
    Any interruption (Ctrl-C, an engine's cancel) stops the job's process tree before it
    propagates.
    """
    workdir = Path(cwd) if cwd is not None and os.path.isdir(cwd) else Path.cwd()
    log_path = workdir / job.run_dir / LAUNCHER_LOG  # an absolute run_dir stays as it is
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            job.command(python=sys.executable),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=stop_with_launcher(),
        )
    try:
        return process.wait(timeout=job.timeout_s), False
    except subprocess.TimeoutExpired:
        stop_groups([process], TIMEOUT_GRACE_S)
        return process.wait(), True
    except BaseException:
        stop_groups([process], CANCEL_GRACE_S)
        raise

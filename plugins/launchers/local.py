"""``launchers/local``: the jobs of a sweep as processes on this machine, ``jobs`` at a time.

Each job runs ``job.command()`` (``python -m corelib run ... --run-dir RUN_DIR``) in a session
of its own, so that the job and everything it starts (torchrun's workers, subprocesses) form
one process group that a timeout or a stop ends together. Its stdout and stderr go to
``RUN_DIR/launcher.log``: the job's own record keeps ``output.log``, and ``launcher.log`` also
holds what a job printed before its record started (an import error, a bad flag). On Linux a
job also gets SIGTERM from the kernel when the process that launched it dies (even by SIGKILL),
so a sweep killed outright leaves no job running on its own.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import IO

import attrs

from corelib import ConfigError
from corelib.runs import Job, JobResult, collect
from plugins.launchers._process_groups import stop_groups, stop_with_launcher

__all__ = ["LAUNCHER_LOG", "LocalLauncher"]

LAUNCHER_LOG = "launcher.log"
"""In a job's run directory: the job process's stdout and stderr, as the launcher got them."""


class LocalLauncher:
    """Runs jobs as subprocesses, ``jobs`` at once (``--jobs N``).

    A job past its ``timeout_s``, and every running job when the iterator is closed (Ctrl-C,
    ``--fail-fast``), gets SIGTERM on its whole process group, then SIGKILL after ``grace_s``
    seconds.
    """

    def __init__(self, jobs: int = 1, grace_s: float = 5.0) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"launchers/local: jobs must be an integer >= 1, got {jobs!r}")
        if isinstance(grace_s, bool) or not isinstance(grace_s, int | float) or grace_s < 0:
            raise ConfigError(f"launchers/local: grace_s must be a number >= 0, got {grace_s!r}")
        self.jobs = jobs
        self.grace_s = float(grace_s)

    @property
    def slots(self) -> int:
        """How many jobs run at once."""
        return self.jobs

    def launch(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Start up to ``self.jobs`` jobs at a time; yield each result as its job ends."""
        waiting = list(reversed(jobs))
        running: list[_Running] = []
        try:
            while waiting or running:
                while waiting and len(running) < self.jobs:
                    job = waiting.pop()
                    try:
                        running.append(_Running.start(job))
                    except OSError as exc:  # e.g. its run directory cannot be written
                        yield attrs.evolve(collect(job, None), error=f"not started: {exc}")
                if not running:
                    continue
                _wait_any(running, _next_deadline(running))
                for process in list(running):
                    ended = process.ended()
                    if ended is None and process.past_deadline():
                        process.timed_out = True
                        _stop([process], self.grace_s)
                        ended = process.ended()
                    if ended is not None:
                        running.remove(process)
                        yield process.result(ended)
        finally:  # closed early, or interrupted: nothing we started outlives the sweep
            _stop(running, self.grace_s)


class _Running:
    """One started job: its process (the leader of its own process group) and its log."""

    def __init__(self, job: Job, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.job = job
        self.process = process
        self.log = log
        self.started = time.monotonic()
        self.deadline = None if job.timeout_s is None else self.started + job.timeout_s
        self.timed_out = False
        self.pidfd: int | None = None
        if hasattr(os, "pidfd_open"):  # Linux: wait on the process without polling
            with contextlib.suppress(OSError):
                self.pidfd = os.pidfd_open(process.pid)

    @classmethod
    def start(cls, job: Job) -> _Running:
        job.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(job.run_dir / LAUNCHER_LOG, "wb")  # noqa: SIM115 - closed in ended()
        try:
            process = subprocess.Popen(
                job.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches its children
                preexec_fn=stop_with_launcher(),
            )
        except BaseException:
            log.close()
            raise
        return cls(job, process, log)

    def result(self, exit_code: int) -> JobResult:
        """The job's result from its record; the wall time measured here if the record has none."""
        result = collect(self.job, exit_code, timed_out=self.timed_out)
        if result.wall_s is None:
            result = attrs.evolve(result, wall_s=time.monotonic() - self.started)
        return result

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def ended(self) -> int | None:
        """The exit status once the process has exited (it is reaped then), else None."""
        code = self.process.poll()
        if code is not None and not self.log.closed:
            self.log.close()
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
        return code


def _next_deadline(running: list[_Running]) -> float | None:
    deadlines = [p.deadline for p in running if p.deadline is not None]
    return min(deadlines) if deadlines else None


def _wait_any(running: list[_Running], deadline: float | None) -> None:
    """Block until one of ``running`` may have exited, or ``deadline`` (monotonic) passes."""
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    fds = [p.pidfd for p in running if p.pidfd is not None]
    if len(fds) == len(running):
        select.select(fds, [], [], timeout)
    else:  # no pidfd: poll
        time.sleep(0.02 if timeout is None else min(timeout, 0.02))


def _stop(running: list[_Running], grace_s: float) -> None:
    """Stop each job's process group (:func:`stop_groups`), then close its log."""
    try:
        stop_groups([p.process for p in running], grace_s)
    finally:
        for process in running:
            process.ended()

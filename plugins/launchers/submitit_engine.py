"""``launchers/submitit``: each job of a sweep is a submitit job (SLURM, or this machine).

A submitted job runs :func:`plugins.launchers._remote.run_job` on its node: the job's own
``corelib run`` command as a fresh process (isolated exactly as ``launchers/local`` isolates it;
``--nproc-per-node`` jobs start torchrun there), and its exit status comes back through
submitit. ``cluster="local"`` runs the same code path on this machine (submitit's
``LocalExecutor``); ``"debug"`` runs each job in turn from this process. Needs the extra
``corelib[submitit]``.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import attrs

from corelib import ConfigError, Trusted
from corelib.runs import Job, JobResult, collect
from plugins.launchers._extras import engine_reason, import_engine
from plugins.launchers._remote import run_job, shipped

__all__ = ["SubmititLauncher"]

_NAME = "launchers/submitit"
_SLURM_SLOTS = 256  # what hydra-submitit-launcher lets run at once (its array_parallelism)
_UNBOUNDED_MIN = 60 * 24 * 365  # the local cluster's default limit is 2 minutes: lift it
_MARGIN_MIN = 1  # the engine's limit leaves the job's own timeout this much room
_WAIT_GRACE_S = 60.0  # past its timeout and this, a job still running is cancelled
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SubmititLauncher:
    """Runs each job as a submitit job: on SLURM, or on this machine through the same code path.

    A job is one task on one node; it starts more processes itself with ``--nproc-per-node``.

    Args:
        cluster: ``slurm``; ``local`` (this machine, the same code path); ``debug`` (each job
            in turn from this process).
        folder: submitit's own files (pickles, logs); default ``<sweep dir>/.submitit``.
        timeout_min: SLURM's time limit; default: the job's ``--timeout`` in minutes, plus one.
        partition: the SLURM partition.
        nodes: must be 1 (one task on one node per job).
        gpus_per_node: GPUs for the job (on ``local``: the first ones, none by default).
        cpus_per_task: CPUs for the job.
        mem_gb: memory for the job, in GB.
        tasks_per_node: must be 1 (the job starts its workers with ``--nproc-per-node``).
        slurm_additional_parameters: more ``#SBATCH`` options, e.g. ``{account: proj42}``.
        setup: shell lines run before the job, e.g. ``module load cuda/12.1``.
        max_jobs_at_once: jobs submitted and not done (256 on SLURM, the CPU count locally).
        name: the SLURM job name.
        poll_s: seconds between polls of the jobs' states.
    """

    def __init__(
        self,
        cluster: str = "slurm",
        folder: Annotated[str | None, Trusted] = None,
        timeout_min: int | None = None,
        partition: str | None = None,
        nodes: int = 1,
        gpus_per_node: int | None = None,
        cpus_per_task: int | None = None,
        mem_gb: float | None = None,
        tasks_per_node: int = 1,
        slurm_additional_parameters: Annotated[dict[str, Any] | None, Trusted] = None,
        setup: Annotated[list[str] | None, Trusted] = None,
        max_jobs_at_once: int | None = None,
        name: str = "corelib",
        poll_s: float = 1.0,
    ) -> None:
        self._submitit: Any = import_engine("submitit", _NAME, "submitit", "submitit")
        clusters = sorted(self._submitit.core.plugins.get_executors())
        if cluster not in clusters:
            raise ConfigError(
                f"{_NAME}: cluster={cluster!r}: expected one of {', '.join(clusters)}"
            )
        if nodes != 1 or tasks_per_node != 1:
            raise ConfigError(
                f"{_NAME}: a job is one task on one node (nodes=1, tasks_per_node=1), got "
                f"nodes={nodes}, tasks_per_node={tasks_per_node}; start several processes per job "
                "with --nproc-per-node N (torchrun on the node it lands on)"
            )
        for key, number in (("max_jobs_at_once", max_jobs_at_once), ("timeout_min", timeout_min)):
            if number is not None and number < 1:
                raise ConfigError(f"{_NAME}: {key}={number}: expected an integer >= 1")
        if poll_s <= 0:
            raise ConfigError(f"{_NAME}: poll_s={poll_s}: expected a number of seconds > 0")
        _require_plain_text(
            {
                "name": name,
                "partition": partition,
                "folder": folder,
                **{f"setup[{i}]": line for i, line in enumerate(setup or [])},
                **{
                    f"slurm_additional_parameters.{key}": f"{key}={value}"
                    for key, value in (slurm_additional_parameters or {}).items()
                },
            }
        )
        self.cluster = cluster
        self.folder = folder
        self.timeout_min = timeout_min
        self.poll_s = poll_s
        self._resources: dict[str, Any] = {
            "name": name,
            "gpus_per_node": gpus_per_node,
            "cpus_per_task": cpus_per_task,
            "mem_gb": mem_gb,
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_partition": partition,
            "slurm_additional_parameters": slurm_additional_parameters,
            "slurm_setup": setup,
            "local_setup": setup,
        }
        with tempfile.TemporaryDirectory() as scratch:  # submitit may create its folder
            self._executor(Path(scratch))  # refuses bad settings before any job starts
        if cluster == "debug":
            self.slots = 1
        elif max_jobs_at_once is not None:
            self.slots = max_jobs_at_once
        else:
            self.slots = _SLURM_SLOTS if cluster == "slurm" else os.cpu_count() or 1

    def launch(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Submit the jobs (``slots`` at a time) and yield each result as its job ends;
        closing the iterator cancels the jobs still queued or running."""
        if not jobs:
            return
        executor = self._executor(self._folder(jobs))
        cwd = os.getcwd()
        waiting = deque(jobs)
        running: list[_Submitted] = []
        try:
            while waiting or running:
                while waiting and len(running) < self.slots:
                    job = waiting.popleft()
                    running.append(_Submitted(job, self._submit(executor, job, cwd)))
                ended = [entry for entry in running if entry.ended()]
                for entry in ended:
                    running.remove(entry)
                    yield entry.result()
                if not ended:
                    time.sleep(self.poll_s)
        finally:
            for entry in running:
                entry.handle.cancel(check=False)
            _wait_done(running, self.poll_s)

    def _submit(self, executor: Any, job: Job, cwd: str) -> Any:
        """Submit ``job``; a refusal (``sbatch``'s, a folder submitit cannot write) stops the
        launch as a ConfigError, since every other job would meet it too."""
        try:
            executor.update_parameters(**self._parameters(job))
            return executor.submit(run_job, shipped(job), cwd)
        except Exception as exc:
            raise ConfigError(
                f"{_NAME}: job {job.index} could not be submitted: {engine_reason(exc)}"
            ) from exc

    def _executor(self, folder: Path) -> Any:
        """submitit's executor for ``cluster`` in ``folder``, with the resources."""
        try:
            executor = self._submitit.AutoExecutor(folder=folder, cluster=self.cluster)
            executor.update_parameters(**self._parameters(None))
        except (AssertionError, NameError, RuntimeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{_NAME}: cluster={self.cluster}: {engine_reason(exc)}") from exc
        return executor

    def _parameters(self, job: Job | None) -> dict[str, Any]:
        """The executor's parameters for ``job`` (None: for a job without a timeout)."""
        timeout_min = self.timeout_min
        if timeout_min is None and job is not None and job.timeout_s is not None:
            timeout_min = math.ceil(job.timeout_s / 60) + _MARGIN_MIN
        if timeout_min is None and self.cluster != "slurm":
            timeout_min = _UNBOUNDED_MIN  # SLURM: the partition's default limit applies
        parameters = {**self._resources, "timeout_min": timeout_min}
        return {key: value for key, value in parameters.items() if value is not None}

    def _folder(self, jobs: Sequence[Job]) -> Path:
        """submitit's folder: pickles go there and come back, so it must be the user's own."""
        if self.folder is not None and "%" in self.folder:
            return Path(self.folder)  # submitit fills in %j (the job id) per job
        folder = Path(self.folder or jobs[0].run_dir.parent / ".submitit")
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = folder.stat()
        except OSError as exc:
            raise ConfigError(f"{_NAME}: cannot make submitit's folder {folder}: {exc}") from exc
        if hasattr(os, "getuid") and (
            info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            raise ConfigError(
                f"{_NAME}: refusing submitit folder {folder}: submitit unpickles what is in it, "
                "and it is not yours alone (owned by someone else, or writable by group or "
                f"others); use a folder of your own (chmod go-w {folder})"
            )
        return folder


@attrs.define
class _Submitted:
    """A job and its submitit handle; ``started``: when it was first seen running."""

    job: Job
    handle: Any
    started: float | None = None
    cancelled_at_timeout: bool = False

    def ended(self) -> bool:
        """Whether the job is done; one running past its timeout (and a grace) is cancelled."""
        if self.handle.done():
            return True
        if self.job.timeout_s is None:
            return False
        now = time.monotonic()
        if self.started is None and self.handle.state in ("RUNNING", "COMPLETING"):
            self.started = now
        if self.started is not None and now - self.started > self.job.timeout_s + _WAIT_GRACE_S:
            self.handle.cancel(check=False)
            self.cancelled_at_timeout = True
            return True
        return False

    def result(self) -> JobResult:
        """The job's result: its exit status from submitit, the rest from its record."""
        if self.cancelled_at_timeout:
            return collect(self.job, None, timed_out=True)
        try:
            exit_code, timed_out = self.handle.result()
        except Exception as exc:  # submitit's: the job ended without returning
            state = str(self.handle.state)
            timed_out = state.upper().startswith("TIMEOUT")
            result = collect(self.job, None, timed_out=timed_out)
            if timed_out:
                return result
            reason = engine_reason(exc)
            return attrs.evolve(
                result,
                error=f"submitit job {self.handle.job_id} ended in state {state} without an "
                f"exit status ({reason}); its log: {self.handle.paths.stderr}",
            )
        return collect(self.job, exit_code, timed_out=timed_out)


def _wait_done(cancelled: list[_Submitted], poll_s: float, bound_s: float = 5.0) -> None:
    """Give cancelled jobs up to ``bound_s`` to stop, so none outlives the launch unnoticed."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline and not all(_done(entry.handle) for entry in cancelled):
        time.sleep(min(poll_s, 0.1))


def _done(handle: Any) -> bool:
    try:
        return bool(handle.done())
    except Exception:  # a cancelled debug job raises: it will never run
        return True


def _require_plain_text(values: dict[str, str | None]) -> None:
    """Refuse control characters: submitit writes these values into a shell script."""
    for key, value in values.items():
        if value is not None and _CONTROL.search(str(value)):
            raise ConfigError(
                f"{_NAME}: {key}={str(value)[:200]!r}: control characters (a newline would be "
                "a line of its own in the job's sbatch script) are not allowed"
            )

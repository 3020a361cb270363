"""``launchers/ray``: each job of a sweep is a Ray task, on an existing cluster or a local one.

A task runs :func:`plugins.launchers._remote.run_job` where Ray places it: the job's own
``corelib run`` command as a fresh process (``--nproc-per-node`` jobs start torchrun there), and
returns its exit status. Needs the extra ``corelib[ray]``.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import attrs

from corelib import ConfigError, Trusted
from corelib.runs import Job, JobResult, collect
from plugins.launchers._extras import engine_reason, import_engine
from plugins.launchers._remote import run_job, shipped

__all__ = ["RayLauncher"]

_NAME = "launchers/ray"
_CLUSTER_SLOTS = 64  # jobs in flight on an existing cluster, unless max_jobs_at_once says
_WAIT_GRACE_S = 60.0  # past its timeout and this, a task that did not return is force-cancelled
_CANCEL_GRACE_S = 2.0  # after a polite cancel (the job's process tree is stopped), force it


class RayLauncher:
    """Runs each job as a Ray task, on a local Ray or an existing cluster.

    A Ray already started in this process is used as it is and left running.

    Args:
        address: an existing cluster (``ray://head:10001`` through Ray Client, or ``auto`` on
            a node of it); none: start a local Ray for the launch and shut it down after.
        num_cpus: the local Ray's CPUs (default: all); not with ``address``.
        num_gpus_per_job: GPUs each task reserves (Ray sets ``CUDA_VISIBLE_DEVICES``).
        num_cpus_per_job: CPUs each task reserves.
        runtime_env: Ray's runtime environment (env_vars, pip, a working_dir the jobs start
            in), given to ``ray.init`` (to each task where Ray was started already).
        max_jobs_at_once: tasks in flight (default: what the local CPUs hold; 64 on a cluster).
    """

    def __init__(
        self,
        address: Annotated[str | None, Trusted] = None,
        num_cpus: int | None = None,
        num_gpus_per_job: float = 0,
        num_cpus_per_job: float = 1,
        runtime_env: Annotated[dict[str, Any] | None, Trusted] = None,
        max_jobs_at_once: int | None = None,
    ) -> None:
        self._ray: Any = import_engine("ray", _NAME, "Ray", "ray")
        for key, number in (
            ("num_cpus_per_job", num_cpus_per_job),
            ("num_gpus_per_job", num_gpus_per_job),
        ):
            if number < 0:
                raise ConfigError(f"{_NAME}: {key}={number}: expected a number >= 0")
        for key, count in (("num_cpus", num_cpus), ("max_jobs_at_once", max_jobs_at_once)):
            if count is not None and count < 1:
                raise ConfigError(f"{_NAME}: {key}={count}: expected an integer >= 1")
        if address is not None and num_cpus is not None:
            raise ConfigError(
                f"{_NAME}: num_cpus={num_cpus} sizes a local Ray, and address={address!r} names "
                "an existing cluster: give one of them"
            )
        self.address = address
        self.num_cpus = num_cpus
        self.num_cpus_per_job = num_cpus_per_job
        self.num_gpus_per_job = num_gpus_per_job
        self.runtime_env = runtime_env
        if max_jobs_at_once is not None:
            self.slots = max_jobs_at_once
        elif address is not None:
            self.slots = _CLUSTER_SLOTS
        else:
            cpus = num_cpus or os.cpu_count() or 1
            self.slots = max(1, int(cpus // num_cpus_per_job)) if num_cpus_per_job else cpus

    def launch(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Run the jobs as tasks (``slots`` in flight) and yield each result as its task
        ends; closing the iterator cancels the tasks still queued or running."""
        if not jobs:
            return
        ray = self._ray
        started = not ray.is_initialized()
        if started:
            self._init()
        task = ray.remote(run_job).options(
            num_cpus=self.num_cpus_per_job,
            num_gpus=self.num_gpus_per_job,
            max_retries=0,
            runtime_env=None if started else self.runtime_env,
        )
        # a runtime_env's working_dir is where Ray starts the task: the job starts there too
        cwd = None if "working_dir" in (self.runtime_env or {}) else os.getcwd()
        waiting = deque(jobs)
        running: dict[Any, _Task] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.slots:
                    job = waiting.popleft()
                    running[task.remote(shipped(job), cwd)] = _Task(job, time.monotonic())
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    yield self._result(running.pop(ref).job, ref)
                for ref in [ref for ref, entry in running.items() if entry.overdue()]:
                    ray.cancel(ref, force=True)
                    yield collect(running.pop(ref).job, None, timed_out=True)
        finally:
            try:
                self._cancel(list(running))
            finally:
                if started:
                    ray.shutdown()

    def _init(self) -> None:
        """Start a local Ray, or connect to the cluster at ``address``."""
        try:
            self._ray.init(  # the Ray job's runtime_env: a working_dir is uploaded only here
                address=self.address,
                num_cpus=self.num_cpus,
                runtime_env=self.runtime_env,
                include_dashboard=False,
                log_to_driver=False,
            )
        except Exception as exc:  # Ray's: an address it cannot parse or reach, a bad env
            where = f"connect to address={self.address!r}" if self.address else "start"
            raise ConfigError(f"{_NAME}: Ray could not {where}: {engine_reason(exc)}") from exc

    def _result(self, job: Job, ref: Any) -> JobResult:
        try:
            exit_code, timed_out = self._ray.get(ref)
        except Exception as exc:  # Ray's: the task or its worker died, or it was cancelled
            reason = engine_reason(exc)
            result = collect(job, None)
            return attrs.evolve(
                result, error=f"the Ray task ended without an exit status ({reason})"
            )
        return collect(job, exit_code, timed_out=timed_out)

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel politely (the task stops its job's process tree), then by force."""
        if not refs:
            return
        for ref in refs:
            self._ray.cancel(ref, force=False)
        _, left = self._ray.wait(refs, num_returns=len(refs), timeout=_CANCEL_GRACE_S)
        for ref in left:
            self._ray.cancel(ref, force=True)


@attrs.define
class _Task:
    """A job and when its task was submitted."""

    job: Job
    submitted: float

    def overdue(self) -> bool:
        """Whether the task outlived its job's timeout by more than the grace."""
        timeout = self.job.timeout_s
        return timeout is not None and time.monotonic() - self.submitted > timeout + _WAIT_GRACE_S

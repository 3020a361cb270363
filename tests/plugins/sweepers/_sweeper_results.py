"""Job results built by hand, to drive sweepers through ``ask``/``tell`` without running jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corelib.runs import Assignment, Job, JobResult, JobStatus


def job_result(
    assignment: Assignment,
    result: Any = None,
    *,
    index: int = 0,
    status: JobStatus = "finished",
    error: str | None = None,
) -> JobResult:
    """The result of a job that ran ``assignment`` (exit 0 when ``finished``, else 1)."""
    job = Job(
        index=index,
        config="cfg.yaml",
        overrides=tuple(f"{key}={value}" for key, value in assignment.items()),
        run_dir=Path("sweep") / str(index),
    )
    exit_code = 0 if status == "finished" else 1
    return JobResult(job=job, status=status, exit_code=exit_code, result=result, error=error)

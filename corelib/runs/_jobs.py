"""Jobs and their results: what a launcher runs and what it hands back.

A job is one ``corelib run`` command line with its own run directory (its *record*, see
docs/runs.md). A launcher only has to run :meth:`Job.command` somewhere that sees the run
directory and report the exit status; :func:`collect` reads the rest (the result, the times,
the error) from the record the job wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final, Literal

import attrs

__all__ = ["RESULT_FILE", "STATUS_FILE", "Job", "JobResult", "JobStatus", "collect"]

STATUS_FILE: Final = "status.json"
"""In a run record: ``{"status", "exit_code", "wall_s", "cpu_s", "error", ...}``, written at the
start (``"running"``) and replaced at the end."""
RESULT_FILE: Final = "result.json"
"""In a run record: ``{"result": <the result as JSON, or null>, "text": str(result)}``."""

JobStatus = Literal["finished", "failed", "timeout", "killed", "interrupted"]
"""How a job ended: exit 0; a non-zero exit; past its timeout; killed by a signal; stopped by
Ctrl-C (or its launcher's shutdown)."""


@attrs.frozen
class Job:
    """One run of a sweep: ``corelib run CONFIG OVERRIDES... FLAGS... --run-dir RUN_DIR``.

    ``index`` is the job's number in its sweep (its record is ``<sweep dir>/<index>``);
    ``flags`` are the other ``corelib run`` arguments every job gets (``--nproc-per-node 2``,
    ``--allow-import PREFIX``, ``--seed N``); ``timeout_s`` bounds the job's wall time (None: no
    bound), and the launcher enforces it.
    """

    index: int
    config: str
    overrides: tuple[str, ...]
    run_dir: Path = attrs.field(converter=Path)
    flags: tuple[str, ...] = ()
    timeout_s: float | None = None

    def argv(self) -> list[str]:
        """The ``corelib`` arguments of this job (without the program)."""
        return ["run", self.config, *self.overrides, *self.flags, "--run-dir", str(self.run_dir)]

    def command(self, python: str = sys.executable) -> list[str]:
        """The full command line: ``python -m corelib run ...``."""
        return [python, "-m", "corelib", *self.argv()]


@attrs.frozen
class JobResult:
    """What became of a job. ``result`` is its run's result (as JSON where it could be, else
    its text; None when it has none); ``error`` is one line saying why it failed."""

    job: Job
    status: JobStatus
    exit_code: int | None
    result: Any = None
    wall_s: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the job finished (exit status 0)."""
        return self.status == "finished"


def collect(job: Job, exit_code: int | None, *, timed_out: bool = False) -> JobResult:
    """The result of ``job`` after its process ended with ``exit_code`` (None: unknown, or
    never started), read from its record; ``timed_out``: the launcher stopped it at its
    timeout. A record that is missing or unreadable leaves those fields empty."""
    status_data = _read_json(job.run_dir / STATUS_FILE)
    result_data = _read_json(job.run_dir / RESULT_FILE)
    status: JobStatus
    if timed_out:
        status = "timeout"
    elif exit_code == 0:
        status = "finished"
    elif exit_code in (130, -2):
        status = "interrupted"
    elif exit_code is not None and exit_code < 0:
        status = "killed"
    else:
        status = "failed"
    error = status_data.get("error") if isinstance(status_data.get("error"), str) else None
    if (error is None or timed_out) and status != "finished":  # the record says "SIGTERM"
        error = _default_error(status, exit_code, job)
    result = None
    if "result" in result_data and result_data["result"] is not None:
        result = result_data["result"]
    elif isinstance(result_data.get("text"), str):
        result = result_data["text"]
    wall = status_data.get("wall_s")
    return JobResult(
        job=job,
        status=status,
        exit_code=exit_code,
        result=result,
        wall_s=float(wall) if isinstance(wall, int | float) else None,
        error=error,
    )


def _default_error(status: JobStatus, exit_code: int | None, job: Job) -> str:
    if status == "timeout":
        return f"stopped after its timeout of {job.timeout_s:g} s"
    if status == "killed" and exit_code is not None:
        return f"killed by signal {-exit_code}"
    if exit_code is None:
        return "it did not start or its exit status is unknown"
    return f"exit status {exit_code}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

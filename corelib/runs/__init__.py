"""Runs, sweeps and launchers: the protocols plugins implement and the jobs they run.

See docs/runs.md (the run record, multirun) and docs/plugins.md (writing a launcher or sweeper).
"""

from corelib._resolvers import run_dir_given
from corelib.runs._jobs import RESULT_FILE, STATUS_FILE, Job, JobResult, JobStatus, collect
from corelib.runs._protocols import (
    Assignment,
    Choice,
    Interval,
    Launcher,
    Range,
    SearchSpace,
    Sweeper,
)
from corelib.runs._record import RunRecord
from corelib.runs._run import run

__all__ = [
    "RESULT_FILE",
    "STATUS_FILE",
    "Assignment",
    "Choice",
    "Interval",
    "Job",
    "JobResult",
    "JobStatus",
    "Launcher",
    "Range",
    "RunRecord",
    "SearchSpace",
    "Sweeper",
    "collect",
    "run",
    "run_dir_given",
]

"""Runs, sweeps and launchers: the protocols plugins implement and the jobs they run.

See docs/runs.md (the run record, multirun) and docs/plugins.md (writing a launcher or sweeper).
"""

from corelib._resolvers import run_dir_given
from corelib.runs._grammar import Sweep, parse_sweep
from corelib.runs._jobs import RESULT_FILE, STATUS_FILE, Job, JobResult, JobStatus, collect
from corelib.runs._multirun import build_component, multirun
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
from corelib.runs._sweep_files import SWEEP_FILE, SWEEP_LOG, read_sweep_log

__all__ = [
    "RESULT_FILE",
    "STATUS_FILE",
    "SWEEP_FILE",
    "SWEEP_LOG",
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
    "Sweep",
    "Sweeper",
    "build_component",
    "collect",
    "multirun",
    "parse_sweep",
    "read_sweep_log",
    "run",
    "run_dir_given",
]

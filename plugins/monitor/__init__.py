"""A resource monitor for runs: ``resources.json`` in every run record.

Through the run hooks (``corelib_run_start`` / ``corelib_run_end``) it records the run's wall
and CPU seconds (its own and its finished children's, e.g. torchrun's workers), the peak
resident memory of the process and of its largest finished child (``resource.getrusage``), and
the peak CUDA memory of each device when torch is already imported and CUDA initialised (torch
is never imported for it). Without ``--run-dir`` the figures stay in ``record.files``; each
torchrun worker of a recorded run writes its own ``resources.rankN.json``.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from corelib import hookimpl

if TYPE_CHECKING:
    from corelib.runs import RunRecord

__all__ = ["RESOURCES_FILE", "corelib_run_end", "corelib_run_start"]

RESOURCES_FILE: Final = "resources.json"
# ru_maxrss is in kibibytes on Linux and in bytes on macOS
_RSS_UNIT: Final = 1 if sys.platform == "darwin" else 1024

_started: dict[int, tuple[float, float]] = {}  # id(record) -> (monotonic time, CPU seconds)


@hookimpl
def corelib_run_start(record: RunRecord) -> None:
    """Note when the run started and the CPU time used so far."""
    _started[id(record)] = (time.monotonic(), _cpu_s())


@hookimpl
def corelib_run_end(record: RunRecord, result: Any, error: BaseException | None) -> None:
    """Write ``resources.json`` into the record (or keep it in ``record.files``)."""
    wall_start, cpu_start = _started.pop(id(record), (time.monotonic(), _cpu_s()))
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    record.write_json(
        RESOURCES_FILE,
        {
            "wall_s": round(time.monotonic() - wall_start, 6),
            "cpu_s": round(_cpu_s() - cpu_start, 6),
            "peak_rss_bytes": own.ru_maxrss * _RSS_UNIT,
            "peak_rss_children_bytes": children.ru_maxrss * _RSS_UNIT,
            "cuda_peak_bytes": _cuda_peaks(),
        },
    )


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cuda_peaks() -> dict[str, int] | None:
    """The peak memory torch allocated on each CUDA device, by index; None when torch is not
    imported or CUDA was not initialised in this process."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return None
    devices = range(cuda.device_count())
    return {str(index): int(cuda.max_memory_allocated(index)) for index in devices}

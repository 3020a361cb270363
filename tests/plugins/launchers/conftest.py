"""What the launcher tests share: a sweep folder and real ``corelib run`` jobs of a tiny config.

``make_job(index, *overrides, timeout_s=None)`` is a real :class:`corelib.runs.Job` of
``job.py``: ``work(x, sleep, fail, pid_file)`` returns ``{"y": 2 * x}`` after sleeping
``sleep`` seconds, raises when ``fail`` is true, and first writes its process id to
``pid_file`` when given (so a test can see whether the job's process is still alive). Jobs
inherit the environment, with plugin discovery off (they need none).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from corelib.runs import Job

JOB_CONFIG = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from corelib import L


    def work(x: int = 1, sleep: float = 0.0, fail: bool = False, pid_file: str = "") -> dict:
        if pid_file:
            Path(pid_file).write_text(str(os.getpid()))
        time.sleep(sleep)
        if fail:
            raise RuntimeError("asked to fail")
        return {"y": 2 * x}


    main = L(work)(x=1, sleep=0.0, fail=False, pid_file="")
    """
)

MakeJob = Callable[..., Job]


@pytest.fixture
def sweep_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty sweep folder; the jobs' config ``job.py`` lies beside it."""
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    (tmp_path / "job.py").write_text(JOB_CONFIG)
    return tmp_path / "sweep"


@pytest.fixture
def make_job(sweep_dir: Path) -> MakeJob:
    """Job ``index`` of the sweep, with its overrides (``main.x=3``, ``main.fail=true``)."""

    def make(index: int, *overrides: str, timeout_s: float | None = None) -> Job:
        config = str(sweep_dir.parent / "job.py")
        return Job(index, config, overrides, sweep_dir / str(index), timeout_s=timeout_s)

    return make

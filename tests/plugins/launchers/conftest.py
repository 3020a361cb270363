"""What the launcher tests share: a sweep folder and real ``corelib run`` jobs of a tiny config.

``make_job(index, *overrides, timeout_s=None)`` is a real :class:`corelib.runs.Job` of
``job.py`` (``_launcher_jobs.JOB_CONFIG``). Jobs inherit the environment, with plugin discovery
off (they need none).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _launcher_jobs import JOB_CONFIG

from corelib.runs import Job

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

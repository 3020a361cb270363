"""``launchers/local``: jobs as real subprocesses, each in a process group of its own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _corelib_cli import REPO
from _sweep_jobs import ALLOW, gone, read_tag, write_sweep_app

from corelib import ConfigError
from corelib.runs import Job
from plugins.launchers.local import LAUNCHER_LOG, LocalLauncher


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sweep app in ``tmp_path``, the current folder, importable by the jobs."""
    write_sweep_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(REPO)]))
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    return tmp_path


def job(app: Path, index: int, *overrides: str, timeout_s: float | None = None) -> Job:
    return Job(index, "sweep.yaml", overrides, app / "out" / str(index), ALLOW, timeout_s)


def test_results_come_as_jobs_end_with_their_records(app: Path) -> None:
    jobs = [job(app, 0, "main.sleep=1.5"), job(app, 1, "main.a=5")]

    results = list(LocalLauncher(jobs=2).launch(jobs))

    assert [r.job.index for r in results] == [1, 0]  # the quick one ended first
    assert [r.status for r in results] == ["finished", "finished"]
    assert results[0].result == {"loss": 10, "width": 1}  # from the job's own record
    assert "job a=5 b=2 mode=ok" in (app / "out" / "1" / LAUNCHER_LOG).read_text()


def test_one_slot_runs_jobs_one_after_another(app: Path) -> None:
    jobs = [job(app, 0, "main.tag=t", "main.mode=ok"), job(app, 1, "main.tag=t", "main.mode=ok-2")]

    assert all(r.ok for r in LocalLauncher(jobs=1).launch(jobs))

    first, second = read_tag(app, "t-ok"), read_tag(app, "t-ok-2")
    assert first["end"] <= second["start"]


def test_a_job_past_its_timeout_is_stopped_with_its_children(app: Path) -> None:
    hanging = job(app, 0, "main.mode=hang", "main.tag=t", timeout_s=2)
    started = time.monotonic()

    (result,) = LocalLauncher(grace_s=1).launch([hanging])

    assert time.monotonic() - started < 20
    assert result.status == "timeout"
    assert result.error == "stopped after its timeout of 2 s"
    note = read_tag(app, "t-hang")
    assert gone(note["pid"]) and gone(note["child"])


def test_closing_the_iterator_stops_the_running_jobs(app: Path) -> None:
    jobs = [
        job(app, 0, "main.tag=t", "main.mode=crash"),
        job(app, 1, "main.tag=t", "main.mode=hang"),
    ]
    results = LocalLauncher(jobs=2).launch(jobs)

    first = next(results)
    running = read_tag(app, "t-hang")
    results.close()

    assert first.status == "failed" and first.job.index == 0
    assert gone(running["pid"]) and gone(running["child"])


def test_a_job_that_dies_before_its_record_leaves_its_output(app: Path) -> None:
    broken = Job(0, "missing.yaml", (), app / "out" / "0", ALLOW)

    (result,) = LocalLauncher().launch([broken])

    assert result.status == "failed" and result.exit_code == 2
    assert "corelib: error:" in (app / "out" / "0" / LAUNCHER_LOG).read_text()


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_jobs_must_be_a_positive_integer(jobs: object) -> None:
    with pytest.raises(ConfigError, match="launchers/local: jobs must be an integer >= 1"):
        LocalLauncher(jobs=jobs)  # type: ignore[arg-type]

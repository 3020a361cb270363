"""``corelib run -m``: sweeps from the command line, run as real subprocesses.

Each test writes the tiny job of ``_sweep_jobs`` into ``tmp_path`` and sweeps it with
``launchers/local`` (installed plugins are discovered: the launchers and sweepers are plugins).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _corelib_cli import corelib_environment, run_corelib
from _sweep_jobs import ALLOW, gone, job_events, read_events, read_tag, write_sweep_app


def sweep(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``corelib run -m sweep.yaml ARGS --allow-import sweepjob`` in ``tmp_path``."""
    if not (tmp_path / "sweep.yaml").exists():
        write_sweep_app(tmp_path)
    return run_corelib(
        tmp_path, "run", "-m", "sweep.yaml", *args, *ALLOW, plugins=True, timeout=timeout
    )


def test_a_two_by_two_grid_runs_four_jobs_each_with_its_record(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.a=1,2", "main.b=3,4", "--run-dir", "out")

    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    events = job_events(out)
    assert [events[n]["overrides"] for n in range(4)] == [
        ["main.a=1", "main.b=3"],
        ["main.a=1", "main.b=4"],
        ["main.a=2", "main.b=3"],
        ["main.a=2", "main.b=4"],
    ]
    assert {e["status"] for e in events.values()} == {"finished"}
    assert read_events(out)[-1] | {"time": None} == {
        "event": "end",
        "time": None,
        "status": "finished",
        "failed": 0,
    }
    description = json.loads((out / "sweep.json").read_text())
    assert description["space"] == {
        "main.a": {"type": "choice", "values": ["1", "2"]},
        "main.b": {"type": "choice", "values": ["3", "4"]},
    }
    assert [events[n]["result"] for n in range(4)] == [
        {"loss": loss, "width": 1} for loss in (3, 4, 6, 8)
    ]
    for n in range(4):  # each job wrote its own record
        status = json.loads((out / str(n) / "status.json").read_text())
        assert status["status"] == "finished"
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["job", "status", "main.a", "main.b", "loss", "width", "wall_s"]
    assert [row.split()[:6] for row in rows] == [
        ["0", "finished", "1", "3", "3", "1"],
        ["1", "finished", "1", "4", "4", "1"],
        ["2", "finished", "2", "3", "6", "1"],
        ["3", "finished", "2", "4", "8", "1"],
    ]
    assert done.stderr.startswith(f"corelib: sweep in {out}\n")  # where to look while it runs
    assert "job 3 finished" in done.stderr


def test_the_default_folder_is_multirun_config_stem_timestamp(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.a=range(1,3)")

    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "multirun" / "sweep").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["0", "1", "sweep.json", "sweep.jsonl"]


def test_a_bad_value_for_one_job_stops_the_sweep_before_any_job_starts(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.a=1,x", "main.b=2", "--run-dir", "out")

    assert done.returncode == 2
    assert "job 1 (main.a=x main.b=2)" in done.stderr
    assert "expected int, got str 'x'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "sweep in" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran, nothing is left: fix it and rerun

    fixed = sweep(tmp_path, "main.a=1,3", "main.b=2", "--run-dir", "out")
    assert fixed.returncode == 0, fixed.stderr


def test_a_missing_preset_in_a_preset_sweep_is_found_before_launch(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.model=@small,@huge", "--run-dir", "out")

    assert done.returncode == 2
    assert "job 1 (main.model=@huge)" in done.stderr
    assert not (tmp_path / "out" / "0").exists()

    done = sweep(tmp_path, "main.model=@small,@large", "--run-dir", "presets")
    assert done.returncode == 0, done.stderr
    rows = [row.split() for row in done.stdout.splitlines()[1:]]
    assert [(row[2], row[4]) for row in rows] == [("@small", "8"), ("@large", "64")]  # width


def test_failed_jobs_are_recorded_and_resume_reruns_only_them(tmp_path: Path) -> None:
    args = ("main.mode=ok,crash,hang,kill", "--jobs", "4", "--timeout", "3", "--run-dir", "out")
    done = sweep(tmp_path, *args)

    assert done.returncode == 1, done.stderr
    out = tmp_path / "out"
    events = job_events(out)
    assert [events[n]["status"] for n in range(4)] == ["finished", "failed", "timeout", "killed"]
    assert [events[n]["exit_code"] for n in (1, 3)] == [1, -9]
    assert "job 1 failed" in done.stderr
    assert "the job crashed on purpose" in (out / "1" / "launcher.log").read_text()

    (tmp_path / "fixed").touch()  # the next attempt of each job succeeds
    done = sweep(tmp_path, *args, "--resume")

    assert done.returncode == 0, done.stderr
    relaunched = [e["job"] for e in read_events(out) if e["event"] == "launch"][4:]
    assert sorted(relaunched) == [1, 2, 3]
    assert {e["status"] for e in job_events(out).values()} == {"finished"}
    assert (out / "1.1" / "launcher.log").exists()  # the failed attempt's record is kept
    assert len(done.stdout.splitlines()) == 5  # the table shows every job, job 0 included


def test_resume_refuses_a_changed_command_line(tmp_path: Path) -> None:
    assert sweep(tmp_path, "main.a=1,2", "--run-dir", "out").returncode == 0

    done = sweep(tmp_path, "main.a=1,3", "--run-dir", "out", "--resume")

    assert done.returncode == 2
    assert "--resume: the command line differs" in done.stderr
    assert "overrides: was ['main.a=1,2'], now ['main.a=1,3']" in done.stderr
    assert sweep(tmp_path, "main.a=1,2", "--run-dir", "out").returncode == 2  # not empty


def test_fail_fast_stops_running_jobs_and_launches_no_more(tmp_path: Path) -> None:
    started = time.monotonic()
    done = sweep(
        tmp_path, "main.mode=hang,crash,ok", "main.tag=t", "--jobs", "2", "--fail-fast",
        "--run-dir", "out",
    )  # fmt: skip

    assert done.returncode == 1
    assert time.monotonic() - started < 40  # the hanging job did not run its minute
    events = job_events(tmp_path / "out")
    assert [events[n]["status"] for n in range(3)] == ["interrupted", "failed", "interrupted"]
    assert "--fail-fast after job 1 failed" in events[0]["error"]
    hanging = read_tag(tmp_path, "t-hang")
    assert gone(hanging["pid"]) and gone(hanging["child"])
    assert not (tmp_path / "out" / "2" / "launcher.log").exists()  # job 2 never started


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_stops_the_running_jobs_and_exits_130(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    write_sweep_app(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "corelib", "run", "-m", "sweep.yaml", *ALLOW, "--jobs", "2",
         "main.mode=ok,hang,hang-2,ok-2", "main.tag=t", "--run-dir", "out"],
        cwd=tmp_path,
        env=corelib_environment(tmp_path, plugins=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        hanging = [read_tag(tmp_path, name) for name in ("t-hang", "t-hang-2")]
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()

    assert process.returncode == code, stderr
    assert f"corelib: interrupted ({signum.name})" in stderr
    for note in hanging:
        assert gone(note["pid"]) and gone(note["child"])  # no job, nor a child of one, is left
    events = read_events(tmp_path / "out")
    ended = {e["job"]: e["status"] for e in events if e["event"] == "job"}
    assert ended == {0: "finished", 1: "interrupted", 2: "interrupted", 3: "interrupted"}
    assert not (tmp_path / "out" / "3" / "launcher.log").exists()  # job 3 never started
    assert events[-1]["event"] == "end" and events[-1]["status"] == "interrupted"


@pytest.mark.timeout(60)
def test_a_sweep_killed_outright_leaves_no_job_running(tmp_path: Path) -> None:
    write_sweep_app(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "corelib", "run", "-m", "sweep.yaml", *ALLOW,
         "main.mode=hang", "main.tag=t", "--run-dir", "out"],
        cwd=tmp_path,
        env=corelib_environment(tmp_path, plugins=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    job = read_tag(tmp_path, "t-hang")
    try:
        process.kill()  # SIGKILL: the sweep cannot stop its jobs itself
        process.wait(timeout=10)

        assert gone(job["pid"], timeout=20)  # the kernel sent the job SIGTERM
        status = json.loads((tmp_path / "out" / "0" / "status.json").read_text())
        assert status["status"] == "interrupted"
    finally:
        for pid in (job["pid"], job["child"]):  # the job's own child is the job's to stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_jobs_2_runs_two_jobs_at_once(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.sleep=1", "main.mode=ok,ok-2", "main.tag=t", "--jobs", "2")

    assert done.returncode == 0, done.stderr
    a, b = read_tag(tmp_path, "t-ok"), read_tag(tmp_path, "t-ok-2")
    assert a["start"] < b["end"] and b["start"] < a["end"]


@pytest.mark.slow
@pytest.mark.distributed
def test_launch_flags_reach_every_job_which_runs_through_torchrun(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.a=3", "--nproc-per-node", "2", "--run-dir", "out", timeout=110)

    assert done.returncode == 0, done.stderr
    (event,) = job_events(tmp_path / "out").values()
    assert event["result"] == {"loss": 6, "width": 1, "world": 2}  # rank 0's, of 2 workers


def test_launcher_and_sweeper_parameters_are_not_job_overrides(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.a=1,2", "launcher.jobs=2", "sweeper.max_jobs=2", "--run-dir", "o")
    assert done.returncode == 0, done.stderr
    assert job_events(tmp_path / "o")[0]["overrides"] == ["main.a=1"]

    too_many = sweep(tmp_path, "main.a=1,2,3", "sweeper.max_jobs=2", "--run-dir", "o2")
    assert too_many.returncode == 2
    assert "max_jobs=2" in too_many.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--launcher", "nosuch"), "no component named 'nosuch'; known: launchers/local"),
        (("launcher.nope=1",), "nope"),
        (("launcher._target_=os.system",), "expected launcher.KEY=VALUE or sweeper.KEY=VALUE"),
        (("--force-run-dir",), "--force-run-dir does not apply to a sweep"),
        (("--jobs", "2", "launcher.jobs=2"), "--jobs and launcher.jobs"),
        (("--jobs", "0"), "expected a number > 0"),
        (("main.a=choise(1,2)",), "unknown sweep function 'choise'"),
        (("main.a=1,,2",), "an empty value in the list"),
        (("main.a=interval(0,1)",), "continuous domain with no grid"),
        (("--resume",), "--resume needs --run-dir"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: tuple[str], message: str) -> None:
    done = sweep(tmp_path, *args)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("launcher.nope=1",),
            "--launcher local: unexpected keyword argument 'nope' for "
            "plugins.launchers.local.LocalLauncher; accepted: jobs, grace_s",
        ),
        (("sweeper.max_jobs=x",), "--sweeper grid: "),
        (("launcher.jobs=0",), "launchers/local: jobs must be an integer >= 1, got 0"),
    ],
)
def test_a_bad_option_is_named_by_its_flag_not_by_the_config_file(
    tmp_path: Path, args: tuple[str], line: str
) -> None:
    done = sweep(tmp_path, "main.a=1,2", *args)

    assert done.returncode == 2
    assert done.stderr.startswith(f"corelib: error: {line}")
    assert "sweep.yaml" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_sweep_flags_without_m_are_usage_errors(tmp_path: Path) -> None:
    write_sweep_app(tmp_path)
    done = run_corelib(tmp_path, "run", "sweep.yaml", *ALLOW, "--jobs", "2", "--fail-fast")

    assert done.returncode == 2
    assert "--jobs, --fail-fast applies to a sweep: add -m" in done.stderr


def test_each_job_sees_its_own_record_as_run_dir_from_the_check_on(tmp_path: Path) -> None:
    (tmp_path / "where.yaml").write_text(
        "main: {_target_: builtins.dict, n: 0, where: '${run:dir}/out'}\n"
    )
    done = run_corelib(
        tmp_path,
        *("run", "-m", "where.yaml", "main.n=1,2", "--run-dir", "sweep"),
        *("--allow-import", "builtins"),
        plugins=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr  # the check before launch resolved ${run:dir} too
    for n in (0, 1):
        result = json.loads((tmp_path / "sweep" / str(n) / "result.json").read_text())
        assert result["result"] == {"n": n + 1, "where": str(tmp_path / "sweep" / str(n) / "out")}

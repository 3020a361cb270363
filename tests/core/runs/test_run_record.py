"""``corelib run --run-dir DIR`` as a real subprocess: the record's files, how a run that fails
(to load, in user code) or is stopped (Ctrl-C, SIGTERM) is recorded, reruns, and git."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _corelib_cli import REPO, run_corelib

APP = """
    import os
    import sys
    import time
    from pathlib import Path


    class Job:
        '''Prints on both streams (and from a subprocess), returns its score.'''

        def __init__(self, n: int = 1, where: str = "") -> None:
            self.n, self.where = n, where

        def run(self) -> dict:
            print(f"stdout of the run, where={self.where}", flush=True)
            print("stderr of the run", file=sys.stderr, flush=True)
            os.system("echo output of a subprocess")
            return {"score": self.n * 2, "name": "job"}


    def secret_length(key: str, url: str) -> int:
        return len(key) + len(url)


    class LeavesAChild:
        def run(self) -> str:
            import subprocess

            subprocess.Popen(["sh", "-c", "sleep 1; echo the child ends late"])
            return "started"


    class Quits:
        def run(self) -> None:
            sys.exit(3)


    class Opaque:
        def run(self) -> object:
            return Opaque()

        def __str__(self) -> str:
            return "an opaque result"


    class Boom:
        def run(self) -> None:
            print("about to fail", flush=True)
            raise RuntimeError("boom in user code")


    class Sleeper:
        def __init__(self, ready: str) -> None:
            self.ready = Path(ready)

        def run(self) -> None:
            print("sleeping", flush=True)
            self.ready.touch()
            while True:
                time.sleep(0.05)
"""

JOB = "main:\n  _target_: app.Job\n  n: 3\n  where: ${run:dir}\n"
RECORD_FILES = {
    "run.json",
    "config.yaml",
    "config.resolved.yaml",
    "plugins.json",
    "output.log",
    "result.json",
    "status.json",
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "job.yaml").write_text(JOB)
    return tmp_path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def corelib_run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_corelib(workdir, "run", *args, "--allow-import", "app")


def test_a_recorded_run_writes_every_file_of_the_record(workdir: Path) -> None:
    done = corelib_run(workdir, "job.yaml", "main.n=4", "--run-dir", "out")
    assert done.returncode == 0, done.stderr
    record = workdir / "out"
    assert {path.name for path in record.iterdir()} == RECORD_FILES  # no temporary file left
    status = read_json(record / "status.json")
    assert status["status"] == "finished" and status["exit_code"] == 0 and status["error"] is None
    assert status["wall_s"] > 0 and status["cpu_s"] >= 0
    assert status["started"].endswith("+00:00") and status["ended"] >= status["started"]
    assert read_json(record / "result.json") == {
        "result": {"score": 8, "name": "job"},
        "text": "{'score': 8, 'name': 'job'}",
    }
    log = (record / "output.log").read_text()
    for line in ("stdout of the run", "stderr of the run", "output of a subprocess", "'score': 8"):
        assert line in log  # and still printed:
    assert "stdout of the run" in done.stdout and "stderr of the run" in done.stderr
    assert "where: ${run:dir}" in (record / "config.yaml").read_text()  # as written
    assert "n: 4" in (record / "config.yaml").read_text()  # with the overrides
    assert f"where: {record}" in (record / "config.resolved.yaml").read_text()
    assert f"where={record}" in log  # ${run:dir}: the record's absolute path
    run = read_json(record / "run.json")
    assert run["argv"][-6:] == ["job.yaml", "main.n=4", "--run-dir", "out", "--allow-import", "app"]
    assert (run["config"], run["overrides"], run["cwd"]) == ("job.yaml", ["main.n=4"], str(workdir))
    assert run["pid"] != 0 and run["host"] and run["started"] == status["started"]
    versions = run["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["corelib"] and "pluggy" in versions["libraries"]
    assert isinstance(read_json(record / "plugins.json"), list)


def test_a_result_that_is_not_json_is_null_with_its_text(workdir: Path) -> None:
    (workdir / "opaque.yaml").write_text("main: {_target_: app.Opaque}\n")
    done = corelib_run(workdir, "opaque.yaml", "--run-dir", "out")
    assert done.returncode == 0, done.stderr
    assert read_json(workdir / "out/result.json") == {"result": None, "text": "an opaque result"}


def test_a_config_that_fails_to_load_is_a_failed_run_with_its_error(workdir: Path) -> None:
    done = corelib_run(workdir, "job.yaml", "main.missing=1", "--run-dir", "out")
    assert done.returncode == 2
    status = read_json(workdir / "out/status.json")
    assert status["status"] == "failed" and status["exit_code"] == 2
    assert "main.missing=1" in status["error"] and "\n" not in status["error"]
    assert read_json(workdir / "out/result.json") == {"result": None, "text": ""}
    assert "corelib: error: " in (workdir / "out/output.log").read_text()


def test_an_error_of_user_code_is_exit_1_with_its_traceback_in_the_log(workdir: Path) -> None:
    (workdir / "boom.yaml").write_text("main: {_target_: app.Boom}\n")
    done = corelib_run(workdir, "boom.yaml", "--run-dir", "out")
    assert done.returncode == 1
    status = read_json(workdir / "out/status.json")
    assert (status["status"], status["exit_code"]) == ("failed", 1)
    assert status["error"] == "RuntimeError: boom in user code"
    log = (workdir / "out/output.log").read_text()
    assert "about to fail" in log
    assert "Traceback (most recent call last)" in log and 'raise RuntimeError("boom' in log


def test_a_finished_record_is_replaced_only_with_force_run_dir(workdir: Path) -> None:
    assert corelib_run(workdir, "job.yaml", "--run-dir", "out").returncode == 0
    again = corelib_run(workdir, "job.yaml", "main.n=5", "--run-dir", "out")
    assert again.returncode == 2
    assert "holds the record of a finished run" in again.stderr
    assert "--force-run-dir" in again.stderr
    assert read_json(workdir / "out/result.json")["result"]["score"] == 6  # untouched
    forced = corelib_run(workdir, "job.yaml", "main.n=5", "--run-dir", "out", "--force-run-dir")
    assert forced.returncode == 0, forced.stderr
    assert read_json(workdir / "out/result.json")["result"]["score"] == 10


def test_a_failed_record_is_run_again_in_place(workdir: Path) -> None:
    assert corelib_run(workdir, "job.yaml", "main.bad=1", "--run-dir", "out").returncode == 2
    done = corelib_run(workdir, "job.yaml", "--run-dir", "out")
    assert done.returncode == 0, done.stderr
    assert read_json(workdir / "out/status.json")["status"] == "finished"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.timeout(60)
def test_a_stopped_run_is_recorded_as_interrupted(
    workdir: Path, signum: signal.Signals, code: int
) -> None:
    (workdir / "sleep.yaml").write_text(
        f"main: {{_target_: app.Sleeper, ready: {workdir / 'ready'}}}\n"
    )
    command = [sys.executable, "-m", "corelib", "run", "sleep.yaml", "--allow-import", "app"]
    environment = {"PYTHONPATH": f"{workdir}:{REPO}", "CORELIB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen(
        [*command, "--run-dir", "out"],
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (workdir / "ready").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        assert read_json(workdir / "out/status.json")["status"] == "running"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == code, stderr
    status = read_json(workdir / "out/status.json")
    assert (status["status"], status["exit_code"]) == ("interrupted", code)
    assert status["error"] == f"interrupted ({signum.name})"
    assert "sleeping" in (workdir / "out/output.log").read_text()


def test_the_git_commit_and_dirty_flag_of_the_working_directory(workdir: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()

    outside = corelib_run(workdir, "job.yaml", "--run-dir", "outside")
    assert outside.returncode == 0, outside.stderr
    assert "git" not in read_json(workdir / "outside/run.json")  # tmp_path is in no repository
    git("init", "-q")
    git("add", "app.py", "job.yaml")
    git("commit", "-qm", "first")
    commit = git("rev-parse", "HEAD")
    assert corelib_run(workdir, "job.yaml", "--run-dir", "clean").returncode == 0
    assert read_json(workdir / "clean/run.json")["git"] == {"commit": commit, "dirty": False}
    (workdir / "job.yaml").write_text(JOB + "# changed\n")
    assert corelib_run(workdir, "job.yaml", "--run-dir", "dirty").returncode == 0
    assert read_json(workdir / "dirty/run.json")["git"] == {"commit": commit, "dirty": True}


def test_show_and_check_take_the_value_of_run_dir(workdir: Path) -> None:
    shown = run_corelib(workdir, "show", "job.yaml", "--resolved", "--run-dir", "somewhere")
    assert shown.returncode == 0, shown.stderr
    assert f"where: {workdir / 'somewhere'}" in shown.stdout
    assert not (workdir / "somewhere").exists()  # nothing is written
    unchecked = run_corelib(workdir, "check", "job.yaml", "--allow-import", "app")
    assert unchecked.returncode == 2
    assert "main.where" in unchecked.stdout and "pass --run-dir DIR" in unchecked.stdout
    checked = run_corelib(workdir, "check", "job.yaml", "--allow-import", "app", "--run-dir", "d")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_value_read_from_the_environment_is_written_into_the_record(workdir: Path) -> None:
    (workdir / "secret.yaml").write_text(
        "main:\n  _target_: app.secret_length\n  key: ${env:SECRET_TOKEN}\n"
        "  url: https://user:${env:SECRET_TOKEN}@host\n"
    )
    done = run_corelib(
        workdir,
        *("run", "secret.yaml", "--allow-import", "app", "--allow-env", "SECRET_TOKEN"),
        *("--run-dir", "out"),
        env={"SECRET_TOKEN": "hunter2-secret"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(2 * len("hunter2-secret") + len("https://user:@host"))
    for path in (workdir / "out").iterdir():
        assert "hunter2" not in path.read_text(), path.name
    resolved = (workdir / "out/config.resolved.yaml").read_text()
    assert "key: <env:SECRET_TOKEN>" in resolved
    assert "url: https://user:<env:SECRET_TOKEN>@host" in resolved


def test_sys_exit_in_user_code_is_recorded_with_its_code(workdir: Path) -> None:
    (workdir / "quits.yaml").write_text("main: {_target_: app.Quits}\n")
    done = corelib_run(workdir, "quits.yaml", "--run-dir", "out")
    assert done.returncode == 3
    status = read_json(workdir / "out/status.json")
    assert (status["status"], status["exit_code"], status["error"]) == (
        "failed",
        3,
        "SystemExit: 3",
    )


@pytest.mark.parametrize("kind", ["file", "symlinked log"])
def test_a_run_dir_that_cannot_hold_a_record_is_a_usage_error(workdir: Path, kind: str) -> None:
    if kind == "file":
        (workdir / "out").write_text("not a folder")
    else:
        (workdir / "out").mkdir()
        (workdir / "out/output.log").symlink_to(workdir / "app.py")
    done = corelib_run(workdir, "job.yaml", "--run-dir", "out")
    assert done.returncode == 2
    assert done.stderr.startswith("corelib: error: ") and "out" in done.stderr
    assert "Traceback" not in done.stderr
    assert "class Job" in (workdir / "app.py").read_text()  # never written through the link
    if kind == "symlinked log":  # the folder holds a record: of a failed run
        status = read_json(workdir / "out/status.json")
        assert (status["status"], status["exit_code"]) == ("failed", 2)


def test_a_config_no_file_can_hold_is_left_out_of_the_record(workdir: Path) -> None:
    (workdir / "lambda.py").write_text("from corelib import L\nmain = L(dict)(f=lambda x: x)\n")
    done = run_corelib(workdir, "run", "lambda.py", "--run-dir", "out")
    assert done.returncode == 0, done.stderr
    assert "corelib: warning: config.yaml not written: main.f: " in done.stderr
    names = {path.name for path in (workdir / "out").iterdir()}
    assert names == RECORD_FILES - {"config.yaml", "config.resolved.yaml"}
    assert read_json(workdir / "out/status.json")["status"] == "finished"


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_run_started_with_a_standard_stream_closed_logs_the_other(
    workdir: Path, closed: str
) -> None:
    descriptor = {"stdout": 1, "stderr": 2}[closed]
    command = [sys.executable, "-m", "corelib", "run", "job.yaml", "--allow-import", "app"]
    done = subprocess.run(
        ["sh", "-c", f'exec "$@" {descriptor}>&-', "sh", *command, "--run-dir", "out"],
        cwd=workdir,
        env={"PYTHONPATH": f"{workdir}:{REPO}", "CORELIB_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert read_json(workdir / "out/status.json")["status"] == "finished"
    log = (workdir / "out/output.log").read_text()
    assert len(log) < 1000  # the log never copies into itself
    kept = "stderr of the run" if closed == "stdout" else "stdout of the run"
    assert kept in log


@pytest.mark.timeout(60)
def test_output_of_a_child_the_run_left_running_is_logged_for_a_while(workdir: Path) -> None:
    (workdir / "child.yaml").write_text("main: {_target_: app.LeavesAChild}\n")
    started = time.monotonic()
    done = corelib_run(workdir, "child.yaml", "--run-dir", "out")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30  # waits at most a few seconds for it
    assert "the child ends late" in (workdir / "out/output.log").read_text()

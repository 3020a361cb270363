"""``corelib run --nproc-per-node 2 --run-dir DIR``: one record, written by the launcher, with
both workers' output in output.log, ${run:dir} in every worker and rank 0's result."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _corelib_cli import REPO, run_corelib

RANKED = """
    import os
    import time


    class Ranked:
        def __init__(self, where: str) -> None:
            self.where = where

        def run(self) -> dict:
            rank = int(os.environ["RANK"])
            print(f"worker {rank} sees {self.where}", flush=True)
            return {"rank": rank, "where": self.where}


    class Sleeper:
        def __init__(self, ready: str) -> None:
            self.ready = ready

        def run(self) -> None:
            print(f"worker {os.environ['RANK']} sleeps", flush=True)
            open(os.path.join(self.ready, os.environ["RANK"]), "w").close()
            while True:
                time.sleep(0.05)


    class FailsOnRankOne:
        def run(self) -> None:
            if os.environ["RANK"] == "1":
                raise RuntimeError("rank one fails")
"""


def install_monitor(folder: Path) -> None:
    """Install plugins/monitor in ``folder`` (on the runs' PYTHONPATH) as a distribution of its
    own, under a name of its own: the workers discover it as they would once installed."""
    dist_info = folder / "monitor_under_test-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: monitor-under-test\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[corelib.plugins]\nmonitor_under_test = monitor_under_test\n"
    )
    (folder / "monitor_under_test.py").write_text(
        "from plugins.monitor import corelib_run_end, corelib_run_start\n"
    )


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_workers_write_one_record(tmp_path: Path) -> None:
    (tmp_path / "ranked.py").write_text(textwrap.dedent(RANKED))
    (tmp_path / "job.yaml").write_text("main: {_target_: ranked.Ranked, where: '${run:dir}'}\n")
    install_monitor(tmp_path)
    done = run_corelib(
        tmp_path,
        *("run", "job.yaml", "--allow-import", "ranked", "--nproc-per-node", "2"),
        *("--run-dir", "out"),
        timeout=110,
        plugins=True,
    )
    assert done.returncode == 0, done.stderr
    record = tmp_path / "out"
    log = (record / "output.log").read_text()
    for rank in (0, 1):
        assert f"worker {rank} sees {record}" in log
    assert json.loads((record / "result.json").read_text())["result"] == {
        "rank": 0,
        "where": str(record),
    }
    status = json.loads((record / "status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("finished", 0)
    run = json.loads((record / "run.json").read_text())
    assert "--nproc-per-node" in run["argv"]  # the launcher's command line, not a worker's
    assert not [path.name for path in record.iterdir() if path.name.startswith(".")]
    # plugins write per worker (record.rank), the launcher's own file as usual
    for name in ("resources.json", "resources.rank0.json", "resources.rank1.json"):
        assert json.loads((record / name).read_text())["wall_s"] > 0


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_failing_worker_fails_the_recorded_run(tmp_path: Path) -> None:
    (tmp_path / "ranked.py").write_text(textwrap.dedent(RANKED))
    (tmp_path / "job.yaml").write_text("main: {_target_: ranked.FailsOnRankOne}\n")
    done = run_corelib(
        tmp_path,
        *("run", "job.yaml", "--allow-import", "ranked", "--nproc-per-node", "2"),
        *("--run-dir", "out"),
        timeout=110,
    )
    assert done.returncode == 1
    status = json.loads((tmp_path / "out/status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("failed", 1)
    assert status["error"].startswith("worker rank 1 failed (exit code 1)")
    assert "RuntimeError: rank one fails" in (tmp_path / "out/output.log").read_text()


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_workers_and_records_the_run_as_interrupted(tmp_path: Path) -> None:
    (tmp_path / "ranked.py").write_text(textwrap.dedent(RANKED))
    (tmp_path / "ready").mkdir()
    (tmp_path / "job.yaml").write_text(
        f"main: {{_target_: ranked.Sleeper, ready: {tmp_path / 'ready'}}}\n"
    )
    command = [sys.executable, "-m", "corelib", "run", "job.yaml", "--allow-import", "ranked"]
    process = subprocess.Popen(
        [*command, "--nproc-per-node", "2", "--run-dir", "out"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "CORELIB_DISABLE_PLUGIN_AUTOLOAD": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job has
    )
    try:
        deadline = time.monotonic() + 90
        while len(list((tmp_path / "ready").iterdir())) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of the run may outlive the test
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 130, stderr
    status = json.loads((tmp_path / "out/status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("interrupted", 130)
    assert status["error"] == "interrupted (SIGINT); workers stopped"
    log = (tmp_path / "out/output.log").read_text()
    assert "worker 0 sleeps" in log and "worker 1 sleeps" in log

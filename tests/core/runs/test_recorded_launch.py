"""``corelib run --nproc-per-node 2 --run-dir DIR``: one record, written by the launcher, with
both workers' output in output.log, ${run:dir} in every worker and rank 0's result."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

RANKED = """
    import os


    class Ranked:
        def __init__(self, where: str) -> None:
            self.where = where

        def run(self) -> dict:
            rank = int(os.environ["RANK"])
            print(f"worker {rank} sees {self.where}", flush=True)
            return {"rank": rank, "where": self.where}


    class FailsOnRankOne:
        def run(self) -> None:
            if os.environ["RANK"] == "1":
                raise RuntimeError("rank one fails")
"""


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_workers_write_one_record(tmp_path: Path) -> None:
    (tmp_path / "ranked.py").write_text(textwrap.dedent(RANKED))
    (tmp_path / "job.yaml").write_text("main: {_target_: ranked.Ranked, where: '${run:dir}'}\n")
    done = run_corelib(
        tmp_path,
        *("run", "job.yaml", "--allow-import", "ranked", "--nproc-per-node", "2"),
        *("--run-dir", "out"),
        timeout=110,
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

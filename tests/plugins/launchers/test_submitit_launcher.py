"""``launchers/submitit`` through submitit's local cluster: the code path SLURM jobs take.

Each job is a real ``corelib run`` of a tiny config with its own run record; the launcher's
results come from submitit (the exit status) and the record (the result, the error).
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from _corelib_cli import run_corelib
from _launcher_jobs import (
    JOB_CONFIG,
    launch_three_endings,
    refusal_without,
    wait_for_file,
    wait_gone,
)

from corelib import ConfigError, InstantiationError, instantiate
from corelib.runs import Job
from plugins.launchers import submitit_engine
from plugins.launchers.submitit_engine import SubmititLauncher

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_results_come_back_with_status_exit_code_and_result(
    make_job: Callable[..., Job], sweep_dir: Path
) -> None:
    results = launch_three_endings(
        SubmititLauncher(cluster="local", poll_s=0.2), make_job, sweep_dir
    )

    assert results[2].error is not None


@pytest.mark.slow
def test_submitits_own_files_stay_private_in_the_sweep_folder(
    make_job: Callable[..., Job], sweep_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    [result] = SubmititLauncher(cluster="local", poll_s=0.2).launch([make_job(0, "main.x=1")])

    assert result.ok
    folder = sweep_dir / ".submitit"
    assert any(folder.glob("*_log.out"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # submitit unpickles what is in it
    assert list(elsewhere.iterdir()) == []  # nothing in the working directory


@pytest.mark.slow
def test_closing_the_iterator_cancels_the_jobs_still_running(
    make_job: Callable[..., Job], sweep_dir: Path
) -> None:
    pid_file = sweep_dir.parent / "pid"
    jobs = [make_job(0, "main.x=1"), make_job(1, "main.sleep=120", f"main.pid_file={pid_file}")]
    results = SubmititLauncher(cluster="local", poll_s=0.2).launch(jobs)

    first = next(results)
    pid = int(wait_for_file(pid_file))
    results.close()

    assert first.job.index == 0
    assert wait_gone(pid), "the cancelled job's process outlived the launch"


@pytest.mark.slow
def test_a_job_with_nproc_per_node_starts_torchrun_where_it_lands(
    make_job: Callable[..., Job],
) -> None:
    job = attrs.evolve(make_job(0, "main.x=5"), flags=("--nproc-per-node", "2"))

    [result] = SubmititLauncher(cluster="local", poll_s=0.2).launch([job])

    assert (result.status, result.result) == ("finished", {"y": 10, "workers": 2})


@pytest.mark.slow
def test_a_job_that_dies_on_its_node_before_it_starts_is_failed_with_submitits_log(
    make_job: Callable[..., Job],
) -> None:
    launcher = SubmititLauncher(cluster="local", setup=["exit 3"], poll_s=0.2)

    [result] = launcher.launch([make_job(0, "main.x=1")])

    assert (result.status, result.exit_code) == ("failed", None)
    assert "without an exit status" in (result.error or "")
    assert "_log.err" in (result.error or "")  # where to look


@pytest.mark.slow
def test_a_job_stuck_on_its_node_past_its_timeout_is_cancelled_as_timed_out(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submitit_engine, "_WAIT_GRACE_S", 0.5)  # the launcher's own bound
    launcher = SubmititLauncher(cluster="local", setup=["sleep 5"], poll_s=0.2)  # stuck

    [result] = launcher.launch([make_job(0, "main.x=1", timeout_s=1)])

    assert (result.status, result.exit_code) == ("timeout", None)


@pytest.mark.slow
def test_the_debug_cluster_runs_the_jobs_from_this_process_one_at_a_time(
    make_job: Callable[..., Job],
) -> None:
    launcher = SubmititLauncher(cluster="debug")

    [result] = launcher.launch([make_job(0, "main.x=2")])

    assert launcher.slots == 1
    assert (result.status, result.result) == ("finished", {"y": 4, "workers": 1})


def test_a_submitit_folder_others_can_write_is_refused(
    make_job: Callable[..., Job], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could put a result pickle there

    with pytest.raises(ConfigError, match="not yours alone"):
        next(SubmititLauncher(cluster="local", folder=str(shared)).launch([make_job(0)]))


def test_a_job_submitit_cannot_submit_stops_the_launch_with_a_config_error(
    make_job: Callable[..., Job],
) -> None:
    launcher = SubmititLauncher(cluster="local", folder="/proc/corelib-%j")  # cannot be made

    with pytest.raises(ConfigError, match="job 0 could not be submitted"):
        next(launcher.launch([make_job(0), make_job(1)]))


def test_a_job_is_one_task_on_one_node() -> None:
    with pytest.raises(ConfigError, match="--nproc-per-node"):
        SubmititLauncher(cluster="local", tasks_per_node=2)


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine is a SLURM node")
def test_slurm_without_slurm_is_refused_when_the_launcher_is_built() -> None:
    with pytest.raises(ConfigError, match='cluster=slurm: Could not detect "srun"'):
        SubmititLauncher()


def test_resources_submitit_refuses_are_refused_when_the_launcher_is_built() -> None:
    with pytest.raises(ConfigError, match="gpus_per_node"):
        SubmititLauncher(cluster="local", gpus_per_node=1.5)  # type: ignore[arg-type]


def test_an_unknown_cluster_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="expected one of debug, local, slurm"):
        SubmititLauncher(cluster="slrum")


@pytest.mark.parametrize(
    "setting",
    [
        {"partition": "gpu\nrm -rf ~"},
        {"setup": ["module load cuda", "x\ny"]},
        {"slurm_additional_parameters": {"qos": "high\necho owned"}},
    ],
)
def test_values_that_would_add_lines_to_the_sbatch_script_are_refused(
    setting: dict[str, object],
) -> None:
    with pytest.raises(ConfigError, match="control characters"):
        SubmititLauncher(**setting)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["folder", "setup", "slurm_additional_parameters"])
@pytest.mark.usefixtures("fresh_registry")
def test_an_untrusted_file_cannot_set_where_pickles_go_or_what_the_shell_runs(key: str) -> None:
    value = {"folder": "/tmp/shared", "setup": ["curl x | sh"], "slurm_additional_parameters": {}}
    node = {"_target_": "launchers/submitit", "cluster": "local", key: value[key]}

    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(node, _allow_=())


def test_a_missing_submitit_is_one_line_naming_the_extra() -> None:
    refusal = refusal_without("submitit", "submitit_engine", "SubmititLauncher(cluster='local')")

    assert refusal == "launchers/submitit needs submitit: pip install 'corelib[submitit]'"


@pytest.mark.slow
def test_corelib_run_m_sweeps_through_submitits_local_cluster(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB_CONFIG)

    done = run_corelib(
        tmp_path,
        *("run", "-m", "job.py", "main.x=1,2", "--run-dir", "out"),
        "--launcher",
        "submitit",
        "launcher.cluster=local",
        "launcher.poll_s=0.2",
        plugins=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:4] == ["job", "status", "main.x", "y"]
    assert [row.split()[:4] for row in rows] == [
        ["0", "finished", "1", "2"],
        ["1", "finished", "2", "4"],
    ]
    assert (tmp_path / "out" / ".submitit").is_dir()

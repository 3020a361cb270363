"""``launchers/ray`` on a real local Ray (2 CPUs) that the tests start once and share.

Each job is a real ``corelib run`` of a tiny config with its own run record, run as a Ray task;
a Ray already started in the process is used, not restarted or shut down, by the launcher.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _corelib_cli import REPO, run_corelib
from _launcher_jobs import (
    JOB_CONFIG,
    launch_three_endings,
    refusal_without,
    wait_for_file,
    wait_gone,
)

from corelib import ConfigError, InstantiationError, instantiate
from corelib.runs import Job

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray with 2 CPUs; its workers start jobs with plugin discovery off."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")  # Ray's workers inherit it
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_results_come_back_with_status_exit_code_and_result(
    make_job: Callable[..., Job], sweep_dir: Path
) -> None:
    import ray

    from plugins.launchers.ray_engine import RayLauncher

    launch_three_endings(RayLauncher(num_cpus=2), make_job, sweep_dir)

    assert ray.is_initialized()  # the launcher did not start this Ray, so it left it running


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_closing_the_iterator_cancels_the_tasks_still_running(
    make_job: Callable[..., Job], sweep_dir: Path
) -> None:
    from plugins.launchers.ray_engine import RayLauncher

    pid_file = sweep_dir.parent / "pid"
    jobs = [make_job(0, "main.x=1"), make_job(1, "main.sleep=120", f"main.pid_file={pid_file}")]
    results = RayLauncher(num_cpus=2).launch(jobs)

    first = next(results)
    pid = int(wait_for_file(pid_file))
    results.close()

    assert first.job.index == 0
    assert wait_gone(pid), "the cancelled job's process outlived the launch"


@pytest.mark.parametrize(
    ("settings", "slots"),
    [({"num_cpus": 4, "num_cpus_per_job": 2}, 2), ({"num_cpus": 3, "num_cpus_per_job": 0.5}, 6)],
)
def test_slots_are_the_jobs_the_local_cpus_hold(settings: dict[str, int], slots: int) -> None:
    from plugins.launchers.ray_engine import RayLauncher

    assert RayLauncher(**settings).slots == slots  # type: ignore[arg-type]


def test_an_address_ray_cannot_use_is_a_config_error_naming_it(
    make_job: Callable[..., Job],
) -> None:
    code = (  # a process of its own: the tests' Ray would be used, whatever the address
        "import sys\n"
        "from corelib import ConfigError\n"
        "from corelib.runs import Job\n"
        "from plugins.launchers.ray_engine import RayLauncher\n"
        "try:\n"
        "    next(RayLauncher(address='head-node').launch([Job(0, 'job.py', (), sys.argv[1])]))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code, str(make_job(0).run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.stdout.startswith("launchers/ray: Ray could not connect to address='head-node'")


def test_a_local_size_and_an_existing_cluster_are_not_given_together() -> None:
    from plugins.launchers.ray_engine import RayLauncher

    with pytest.raises(ConfigError, match="give one of them"):
        RayLauncher(address="auto", num_cpus=2)


@pytest.mark.parametrize(
    ("key", "value"),
    [("address", "ray://attacker.example:10001"), ("runtime_env", {"pip": ["evil"]})],
)
@pytest.mark.usefixtures("fresh_registry")
def test_an_untrusted_file_cannot_pick_the_cluster_or_the_runtime_env(
    key: str, value: object
) -> None:
    node = {"_target_": "launchers/ray", key: value}

    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(node, _allow_=())


def test_a_missing_ray_is_one_line_naming_the_extra() -> None:
    refusal = refusal_without("ray", "ray_engine", "RayLauncher()")

    assert refusal == "launchers/ray needs Ray: pip install 'corelib[ray]'"


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_corelib_run_m_sweeps_on_an_existing_ray_cluster_by_address(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB_CONFIG)

    done = run_corelib(
        tmp_path,
        *("run", "-m", "job.py", "main.x=1,2", "--run-dir", "out"),
        *("--launcher", "ray", "launcher.address=auto"),  # the test's Ray
        plugins=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stderr
    assert "Connecting to existing Ray cluster" in done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:4] == ["job", "status", "main.x", "y"]
    assert [row.split()[:4] for row in rows] == [
        ["0", "finished", "1", "2"],
        ["1", "finished", "2", "4"],
    ]


@pytest.mark.slow
def test_a_ray_the_launcher_starts_gets_the_runtime_env_and_is_shut_down_at_the_end(
    tmp_path: Path,
) -> None:
    app, here = tmp_path / "app", tmp_path / "here"
    app.mkdir()
    here.mkdir()
    (app / "job.py").write_text(JOB_CONFIG)
    code = (
        "import sys, ray\n"
        "from corelib.runs import Job\n"
        "from plugins.launchers.ray_engine import RayLauncher\n"
        "job = Job(0, 'job.py', ('main.x=1',), 'sweep/0')  # job.py: in the working_dir\n"
        "launcher = RayLauncher(num_cpus=1, runtime_env={'working_dir': sys.argv[1]})\n"
        "[result] = launcher.launch([job])\n"
        "print(result.status, result.result, ray.is_initialized())\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code, str(app)],
        cwd=here,
        env={**os.environ, "CORELIB_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.stdout == "finished {'y': 2, 'workers': 1} False\n", done.stderr
    assert (here / "sweep" / "0" / "result.json").is_file()  # the record is where it was asked


def test_a_sweep_without_ray_stops_before_any_job_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB_CONFIG)
    shim = tmp_path / "no_ray"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")

    done = run_corelib(
        tmp_path,
        *("run", "-m", "job.py", "main.x=1,2", "--run-dir", "out", "--launcher", "ray"),
        env={"PYTHONPATH": os.pathsep.join([str(shim), str(REPO)])},
        plugins=True,
    )

    assert done.returncode == 2
    assert done.stderr == "corelib: error: launchers/ray needs Ray: pip install 'corelib[ray]'\n"
    assert not (tmp_path / "out" / "0").exists()

"""``corelib run``, ``show`` and ``check`` as real subprocesses: output, messages and exit codes."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

from corelib import load_config

REPO = Path(__file__).resolve().parents[2]

JOBS = """
    import functools
    import os


    class Job:
        def __init__(self, n: int = 1, fail: bool = False) -> None:
            self.n = n
            self.fail = fail

        def run(self, force: list[str] = ()) -> str:
            if self.fail:
                raise RuntimeError("run exploded")
            return f"rank={os.environ.get('RANK')} n={self.n} force={','.join(force)}"


    class Quiet:
        def run(self) -> None:
            print("ran quietly")


    class Exploding:
        def __init__(self) -> None:
            raise ValueError("constructor exploded")


    def greet(name: str) -> str:
        return f"hello {name}"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "jobs.py").write_text(textwrap.dedent(JOBS))
    return tmp_path


def write(directory: Path, name: str, text: str) -> str:
    (directory / name).write_text(textwrap.dedent(text))
    return name


def corelib(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_corelib(cwd, *args, env=env, timeout=timeout)


JOB_YAML = """
    main:
      _target_: jobs.Job
      n: 3
    other:
      _target_: jobs.greet
      name: world
      _partial_: true
"""


@pytest.mark.timeout(60)
def test_run_builds_main_applies_overrides_and_prints_the_result(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    done = corelib(workdir, "run", config, "--allow-import", "jobs", "main.n=5", "--force", "a")
    assert (done.returncode, done.stdout, done.stderr) == (0, "rank=None n=5 force=a\n", "")
    # overrides before and after options; --force repeatable
    done = corelib(
        workdir,
        "run",
        config,
        "main.n=6",
        "--allow-import",
        "jobs",
        "--force",
        "a",
        "--force",
        "b",
        "+main.fail=false",
    )
    assert done.stdout == "rank=None n=6 force=a,b\n"


@pytest.mark.timeout(60)
def test_entry_root_target_callable_objects_and_none(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    assert corelib(workdir, "run", config, "--unsafe", "--entry", "other").stdout == "hello world\n"
    root = write(workdir, "root.yaml", "_target_: jobs.Quiet\n")
    done = corelib(workdir, "run", root, "--allow-import", "jobs")
    assert (done.returncode, done.stdout) == (0, "ran quietly\n")  # None is not printed


@pytest.mark.timeout(60)
def test_only_rank_zero_prints(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    done = corelib(workdir, "run", config, "--unsafe", env={"RANK": "1"})
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.timeout(60)
def test_safe_mode_refuses_unlisted_imports_before_running_anything(workdir: Path) -> None:
    marker = workdir / "pwned"
    config = write(
        workdir,
        "evil.yaml",
        f"""
        _target_: os.system
        _args_: ["touch {marker}"]
        """,
    )
    done = corelib(workdir, "run", config, "--allow-import", "jobs")
    assert done.returncode == 2 and "refused 'os.system'" in done.stderr
    assert "Traceback" not in done.stderr and not marker.exists()
    job = write(workdir, "job.yaml", JOB_YAML)
    assert "refused 'jobs.Job'" in corelib(workdir, "run", job).stderr


@pytest.mark.timeout(60)
def test_python_configs_are_unrestricted(workdir: Path) -> None:
    config = write(
        workdir,
        "job.py",
        """
        from corelib import L
        from jobs import Job

        main = L(Job)(n=7)
        """,
    )
    assert corelib(workdir, "run", config).stdout == "rank=None n=7 force=\n"


@pytest.mark.timeout(60)
def test_user_code_errors_exit_1_with_traceback(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    done = corelib(workdir, "run", config, "--unsafe", "+main.fail=true")
    assert done.returncode == 1 and "RuntimeError: run exploded" in done.stderr
    assert "Traceback" in done.stderr
    exploding = write(workdir, "exploding.yaml", "main: {_target_: jobs.Exploding}\n")
    done = corelib(workdir, "run", exploding, "--unsafe")
    assert done.returncode == 1
    assert "at 'main' (target 'jobs.Exploding'): ValueError: constructor exploded" in done.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "job.yaml", "--unsafe", "main.nn=1"],
            "unknown key 'main.nn'; did you mean 'main.n'?",
        ),
        (["run", "job.yaml", "--unsafe", "main.n"], "malformed override 'main.n'"),
        (
            ["run", "job.yaml", "--unsafe", "main.n=x"],
            "at 'main.n' (target 'jobs.Job'): expected int",
        ),
        (["run", "job.yaml", "--unsafe", "+main.size=1"], "unexpected keyword argument 'size'"),
        (["run", "job.yaml", "--unsafe", "main._target_=jobs.Nope"], "jobs.Nope"),
        (["run", "job.yaml", "--unsafe", "--entry", "zzz"], "no node 'zzz' to run (keys at"),
        (["run", "job.yaml", "--unsafe", "--entry", "other", "--force", "x"], "takes no 'force'"),
        (
            ["run", "nothing.yaml", "--unsafe"],
            "the root has no '_target_'; pick a node with --entry",
        ),
        (
            ["run", "value.yaml", "--unsafe", "--force", "x"],
            "--force x: the entry node built an int, which has no run() to take it",
        ),
        (["run", "missing.yaml"], "missing.yaml: no such config file"),
        (["run", "job.ini"], "unknown config file type '.ini'"),
        (["show", "job.yaml", "--bogus"], "unrecognized arguments: --bogus"),
        (["run"], "corelib: error: the following arguments are required: CONFIG\n"),
    ],
)
def test_config_errors_exit_2_with_one_message(
    workdir: Path, args: list[str], message: str
) -> None:
    write(workdir, "job.yaml", JOB_YAML)
    write(workdir, "nothing.yaml", "a: 1\n")
    write(workdir, "value.yaml", "main: {_target_: builtins.int, _args_: ['3']}\n")
    done = corelib(workdir, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.timeout(60)
def test_debug_shows_the_traceback_of_config_errors(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    done = corelib(workdir, "--debug", "run", config, "--unsafe", "main.n=x")
    assert done.returncode == 2 and "Traceback" in done.stderr


@pytest.mark.timeout(60)
def test_show_prints_the_final_config_as_yaml_with_anchors(workdir: Path) -> None:
    config = write(
        workdir,
        "cfg.yaml",
        """
        model: &m {_target_: jobs.Job, n: 1}
        opt: {model: *m, lr: 0.1}
        """,
    )
    done = corelib(workdir, "show", config, "model.n=2", "opt.lr=1e-3", "+opt.tag=yes")
    assert done.returncode == 0, done.stderr
    (workdir / "shown.yaml").write_text(done.stdout)
    shown = load_config(workdir / "shown.yaml")
    assert shown.opt.model is shown.model and shown.model.n == 2
    assert shown.opt.lr == 0.001 and shown.opt.tag == "yes"


@pytest.mark.timeout(60)
def test_check_reports_every_problem_at_once(workdir: Path) -> None:
    config = write(
        workdir,
        "cfg.yaml",
        """
        main: {_target_: jobs.Job, n: not-a-number, size: 3}
        other: {_target_: jobs.Missing}
        evil: {_target_: os.system}
        """,
    )
    done = corelib(workdir, "check", config, "--allow-import", "jobs")
    assert done.returncode == 2
    lines = done.stdout.splitlines()  # each names the file, as a compiler's messages do
    expected_int = "cfg.yaml: main.n (target 'jobs.Job'): expected int"
    assert any(line.startswith(expected_int) for line in lines)
    assert any("unexpected keyword argument 'size'" in line for line in lines)
    assert any(line.startswith("cfg.yaml: other (target 'jobs.Missing')") for line in lines)
    assert any(line.startswith("cfg.yaml: evil (target 'os.system'): refused") for line in lines)
    good = corelib(workdir, "check", write(workdir, "job.yaml", JOB_YAML), "--unsafe")
    assert (good.returncode, good.stdout) == (0, "job.yaml: no problems found\n")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_nproc_per_node_launches_workers_and_only_rank_zero_prints(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    done = corelib(
        workdir,
        "run",
        config,
        "--allow-import",
        "jobs",
        "main.n=2",
        "--nproc-per-node",
        "2",
        timeout=110,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "rank=0 n=2 force=\n"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_launcher_checks_first_and_names_a_failed_worker_rank(workdir: Path) -> None:
    config = write(workdir, "job.yaml", JOB_YAML)
    bad = corelib(workdir, "run", config, "--unsafe", "main.n=x", "--nproc-per-node", "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "1 problem(s) found:\n  main.n (target 'jobs.Job'): expected int" in bad.stderr
    failed = corelib(
        workdir,
        "run",
        config,
        "--unsafe",
        "+main.fail=true",
        "--nproc-per-node",
        "2",
        timeout=110,
    )
    assert failed.returncode == 1
    assert "RuntimeError: run exploded" in failed.stderr
    assert "corelib: error: worker rank" in failed.stderr

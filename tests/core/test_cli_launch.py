"""``corelib run``'s launch flags through torchrun: checked flags, each flag reaching torchrun,
and Ctrl-C / SIGTERM ending the launcher (and its workers) with one line, as a single process."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corelib._cli import main

REPO = Path(__file__).resolve().parents[2]

WORKERS = """
    import json
    import os
    import socket
    import time
    from pathlib import Path


    def environment(port: int) -> str:
        '''What torchrun told this worker, and whether its rendezvous store listens on port.'''
        names = ["WORLD_SIZE", "GROUP_RANK", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_MAX_RESTARTS"]
        seen = {name: os.environ.get(name) for name in names}
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            seen["store_listening"] = True
        except OSError:
            seen["store_listening"] = False
        return json.dumps(seen)


    class Sleeper:
        '''Says it is ready (a file per rank), then sleeps until a signal stops it.'''

        def __init__(self, directory: str) -> None:
            self.directory = Path(directory)

        def run(self) -> None:
            (self.directory / f"ready-{os.environ.get('RANK', 'single')}").touch()
            while True:
                time.sleep(0.05)
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workers.py").write_text(textwrap.dedent(WORKERS))
    return tmp_path


def environment(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), str(REPO)])
    env["CORELIB_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def corelib(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corelib", *args],
        cwd=cwd,
        env=environment(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nproc-per-node", "0"], "argument --nproc-per-node: expected an integer >= 1, got 0"),
        (["--nproc-per-node", "-1"], "argument --nproc-per-node: expected an integer >= 1, got -1"),
        (["--nproc-per-node", "two"], "argument --nproc-per-node: expected an integer, got 'two'"),
        (["--nnodes", "0"], "argument --nnodes: expected N or MIN:MAX with 1 <= MIN <= MAX"),
        (["--nnodes", "3:2"], "argument --nnodes: expected N or MIN:MAX with 1 <= MIN <= MAX"),
        (["--nnodes", "1:2:3"], "argument --nnodes: expected N or MIN:MAX with 1 <= MIN <= MAX"),
        (["--node-rank", "-1"], "argument --node-rank: expected an integer >= 0, got -1"),
        (["--nnodes", "2", "--node-rank", "2"], "--node-rank 2: expected a rank below the number"),
        (["--node-rank", "1"], "--node-rank 1: expected a rank below the number of nodes"),
        (["--max-restarts", "-1"], "argument --max-restarts: expected an integer >= 0, got -1"),
        (["--rdzv-endpoint", "node0:99999"], "argument --rdzv-endpoint: expected HOST or"),
        (["--rdzv-endpoint", ":29400"], "argument --rdzv-endpoint: expected HOST or HOST:PORT"),
        (["--rdzv-backend", "carrier-pigeon"], "argument --rdzv-backend: expected one of c10d,"),
        (["--rdzv-id", " "], "argument --rdzv-id: expected a non-empty value"),
        (["--seed", "-1"], "argument --seed: expected an integer in [0, 2**32), got -1"),
    ],
)
def test_malformed_launch_flags_are_one_line_usage_errors_before_anything_is_read(
    workdir: Path, flags: list[str], message: str
) -> None:
    # The config does not exist: the flag is refused before the config is even read.
    done = corelib(workdir, "run", "missing.yaml", *flags)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("corelib: error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "missing.yaml" not in done.stderr
    assert done.stdout == ""


@pytest.mark.timeout(60)
@pytest.mark.skipif(importlib.util.find_spec("etcd") is not None, reason="etcd is installed")
def test_torchrun_failing_to_start_the_workers_is_one_line(workdir: Path) -> None:
    (workdir / "job.yaml").write_text("main: {_target_: workers.environment, port: 1}\n")
    flags = ["--nproc-per-node", "1", "--rdzv-backend", "etcd", "--rdzv-endpoint", "127.0.0.1:1"]
    done = corelib(workdir, "run", "job.yaml", "--unsafe", *flags)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "corelib: error: torchrun could not start the workers: EtcdStubError:"
    )


def test_each_launch_flag_reaches_torchrun(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch.distributed import run as torchrun

    received: list[argparse.Namespace] = []
    inherited: list[dict[str, str]] = []  # what the workers would inherit

    def run(args: argparse.Namespace) -> None:
        received.append(args)
        inherited.append(dict(os.environ))

    monkeypatch.setattr(torchrun, "run", run)
    monkeypatch.setenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")  # the launcher sets it
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    (workdir / "job.yaml").write_text("main: {_target_: workers.environment, port: 1}\n")
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    code = main(
        [
            "run",
            "job.yaml",
            "--allow-import",
            "workers",
            "--nproc-per-node",
            "3",
            "--nnodes",
            "2:4",
            "--node-rank",
            "1",
            "--rdzv-backend",
            "static",
            "--rdzv-endpoint",
            "node0:29411",
            "--rdzv-id",
            "job-7",
            "--max-restarts",
            "5",
            "--seed",
            "11",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [args] = received
    config, command, command_args = torchrun.config_from_args(args)
    assert (config.min_nodes, config.max_nodes, config.nproc_per_node) == (2, 4, 3)
    assert (config.rdzv_backend, config.rdzv_endpoint) == ("static", "node0:29411")
    assert (config.run_id, config.max_restarts) == ("job-7", 5)
    assert config.rdzv_configs["rank"] == 1
    # -P: the worker's current folder is not put first on its sys.path
    assert [command, *command_args[:4]] == [sys.executable, "-P", "-u", "-m", "corelib"]
    worker = command_args[4:]
    assert worker[:2] == ["run", "job.yaml"]
    assert worker[worker.index("--seed") + 1] == "11"
    launch_flags = ("--nproc", "--nnodes", "--rdzv", "--node", "--max")
    assert not any(arg.startswith(launch_flags) for arg in worker)
    # workers import what the launcher could (workdir is on its sys.path), and nothing more
    [env] = inherited
    assert env["PYTHONPATH"] == os.pathsep.join([str(workdir), str(REPO)])
    assert os.environ["PYTHONPATH"] == str(REPO)  # the launcher's own is left as it was


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_two_process_run_with_every_rendezvous_flag(workdir: Path) -> None:
    port = free_port()
    (workdir / "job.yaml").write_text(f"main: {{_target_: workers.environment, port: {port}}}\n")
    done = corelib(
        workdir,
        "run",
        "job.yaml",
        "--allow-import",
        "workers",
        "--nproc-per-node",
        "2",
        "--nnodes",
        "1",
        "--node-rank",
        "0",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "job-42",
        "--max-restarts",
        "1",
        timeout=110,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {  # rank 0's result; the store torchrun hosts on the port
        "WORLD_SIZE": "2",
        "GROUP_RANK": "0",
        "TORCHELASTIC_RUN_ID": "job-42",
        "TORCHELASTIC_MAX_RESTARTS": "1",
        "store_listening": True,
    }


def start_sleepers(workdir: Path, *launch: str) -> subprocess.Popen[str]:
    """``corelib run`` of a config that sleeps, once every worker says it is ready."""
    ready = workdir / "ready"
    ready.mkdir()
    config = f"main: {{_target_: workers.Sleeper, directory: {ready}}}\n"
    (workdir / "sleep.yaml").write_text(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "corelib", "run", "sleep.yaml", "--unsafe", *launch],
        cwd=workdir,
        env=environment(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job has
    )
    workers = int(launch[1]) if launch else 1
    deadline = time.monotonic() + 90
    while len(list(ready.iterdir())) < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the workers did not start: {process.communicate()[1]}")
        time.sleep(0.05)
    return process


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_single_process_stopped_by_a_signal_says_so_in_one_line(
    workdir: Path, signum: signal.Signals, code: int
) -> None:
    process = start_sleepers(workdir)
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code
    assert stderr == f"corelib: interrupted ({signum.name})\n"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("signum", "group", "code"),
    [(signal.SIGINT, True, 130), (signal.SIGTERM, True, 143), (signal.SIGTERM, False, 143)],
    ids=["SIGINT-to-the-group", "SIGTERM-to-the-group", "SIGTERM-to-the-launcher"],
)
def test_the_launcher_stopped_by_a_signal_stops_its_workers_and_says_so(
    workdir: Path, signum: signal.Signals, group: bool, code: int
) -> None:
    process = start_sleepers(workdir, "--nproc-per-node", "2")
    (os.killpg if group else os.kill)(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == f"corelib: interrupted ({signum.name}); workers stopped"
    assert stderr.count(f"corelib: interrupted ({signum.name})\n") == 2  # each worker's line

"""``corelib run`` and ``check`` as real subprocesses: the result, the run-level seed, messages
that name the file, ``--version``, and a stdout closed early (``corelib list | head``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

REPO = Path(__file__).resolve().parents[2]

DRAWS = """
    import os
    import random
    from pathlib import Path


    def python_draws() -> str:
        return f"random={random.random()}"


    def every_generator(directory: str = "") -> str:
        '''Draws from random, numpy and torch; under torchrun each rank writes its own file.'''
        import numpy
        import torch

        drawn = f"random={random.random()} numpy={numpy.random.rand()} torch={torch.randn(3)}"
        if directory:
            (Path(directory) / f"rank-{os.environ['RANK']}").write_text(drawn)
        return drawn


    def greet(name: str) -> str:
        return f"hello {name}"


    def refuse(setting: str) -> None:
        from corelib import ConfigError

        raise ConfigError(f"refuse: setting {setting!r} is not supported")


    def crash(setting: str) -> None:
        raise RuntimeError(f"crash on {setting!r}")
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "draws.py").write_text(textwrap.dedent(DRAWS))
    return tmp_path


def corelib(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_corelib(cwd, *args, timeout=timeout)


def write(directory: Path, name: str, text: str) -> str:
    (directory / name).write_text(textwrap.dedent(text))
    return name


@pytest.mark.timeout(60)
def test_a_function_targets_return_value_is_the_result(workdir: Path) -> None:
    config = write(workdir, "greet.yaml", "main: {_target_: draws.greet, name: world}\n")
    done = corelib(workdir, "run", config, "--allow-import", "draws")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello world\n", "")
    value = write(workdir, "value.yaml", "main: {_target_: builtins.int, _args_: ['3']}\n")
    assert corelib(workdir, "run", value, "--unsafe").stdout == "3\n"


@pytest.mark.timeout(60)
def test_the_seed_is_set_before_the_config_is_built_so_runs_repeat(workdir: Path) -> None:
    config = write(workdir, "draw.yaml", "main: {_target_: draws.python_draws}\n")
    first, again = (corelib(workdir, "run", config, "--unsafe") for _ in range(2))
    assert first.returncode == 0 and first.stdout == again.stdout, first.stderr
    assert corelib(workdir, "run", config, "--unsafe", "--seed", "0").stdout == first.stdout
    assert corelib(workdir, "run", config, "--unsafe", "--seed", "7").stdout != first.stdout


@pytest.mark.timeout(90)
def test_numpy_and_torch_are_seeded_when_the_config_imports_them(workdir: Path) -> None:
    config = write(workdir, "draw.yaml", "main: {_target_: draws.every_generator}\n")
    first, again = (corelib(workdir, "run", config, "--unsafe", "--seed", "5") for _ in range(2))
    assert first.returncode == 0 and first.stdout == again.stdout, first.stderr
    other = corelib(workdir, "run", config, "--unsafe", "--seed", "6").stdout
    for generator in ("random=", "numpy=", "torch="):  # each of the three is seeded
        assert first.stdout.split(generator)[1].split()[0] != other.split(generator)[1].split()[0]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_every_rank_draws_the_same_numbers(workdir: Path) -> None:
    config = write(
        workdir, "draw.yaml", f"main: {{_target_: draws.every_generator, directory: {workdir}}}\n"
    )
    done = corelib(
        workdir, "run", config, "--unsafe", "--seed", "3", "--nproc-per-node", "2", timeout=110
    )
    assert done.returncode == 0, done.stderr
    rank0, rank1 = ((workdir / f"rank-{rank}").read_text() for rank in (0, 1))
    assert rank0 == rank1 and done.stdout == rank0 + "\n"


@pytest.mark.timeout(60)
def test_check_fails_like_run_when_there_is_nothing_to_run(workdir: Path) -> None:
    config = write(workdir, "nothing.yaml", "a: {_target_: draws.greet, name: x}\n")
    ran = corelib(workdir, "run", config, "--unsafe")
    checked = corelib(workdir, "check", config, "--unsafe")
    assert ran.returncode == checked.returncode == 2
    message = (
        "corelib: error: nothing.yaml: no node 'main' to run; the root has no '_target_'; "
        "pick a node with --entry (keys at the top level: a)\n"
    )
    assert ran.stderr == checked.stderr == message
    picked = corelib(workdir, "check", config, "--unsafe", "--entry", "a")
    assert (picked.returncode, picked.stdout) == (0, "nothing.yaml: no problems found\n")


@pytest.mark.timeout(60)
def test_nothing_to_run_lists_a_few_keys_only(workdir: Path) -> None:
    keys = "x" * 1000 + ": 1\n" + "".join(f"key{i}: {i}\n" for i in range(1000))
    done = corelib(workdir, "run", write(workdir, "many.yaml", keys))
    assert done.returncode == 2 and len(done.stderr) < 300, done.stderr
    assert "(keys at the top level: 'xxxx" in done.stderr
    assert done.stderr.endswith(", key5, key6, ... (993 more))\n")


@pytest.mark.timeout(60)
def test_errors_at_a_key_path_name_the_config_file_too(workdir: Path) -> None:
    config = write(workdir, "greet.yaml", "main: {_target_: draws.greet, name: world, size: 2}\n")
    done = corelib(workdir, "run", config, "--unsafe")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "corelib: error: greet.yaml: at 'main' (target 'draws.greet'): unexpected keyword"
    )
    checked = corelib(workdir, "check", config, "--unsafe")
    assert checked.stdout.startswith("greet.yaml: main (target 'draws.greet'): unexpected keyword")
    raised = write(workdir, "raised.yaml", "main: {_target_: builtins.int, _args_: [x]}\n")
    done = corelib(workdir, "run", raised, "--unsafe")
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "corelib: error: raised.yaml: at 'main' (target 'builtins.int'): ValueError"
    )


@pytest.mark.timeout(60)
def test_version_prints_the_installed_version(workdir: Path) -> None:
    from importlib.metadata import version

    done = corelib(workdir, "--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"corelib {version('corelib')}\n", "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["plugins"],
        ["describe", "draws.greet"],
        ["show", "greet.yaml"],
        ["check", "greet.yaml", "--unsafe"],
        ["run", "greet.yaml", "--unsafe"],
    ],
)
def test_a_stdout_closed_early_ends_quietly_with_141(workdir: Path, command: list[str]) -> None:
    write(workdir, "greet.yaml", "main: {_target_: draws.greet, name: world}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), str(REPO)])}
    read, write_end = os.pipe()
    os.close(read)  # the reader has gone before corelib writes a byte: `corelib list | head -0`
    try:
        done = subprocess.run(
            [sys.executable, "-m", "corelib", *command],
            cwd=workdir,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_a_component_refusing_a_setting_with_a_corelib_error_exits_2(workdir: Path) -> None:
    (workdir / "refuse.yaml").write_text("_target_: draws.refuse\nsetting: bf17\n")
    refused = corelib(workdir, "run", "refuse.yaml", "--allow-import", "draws")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("corelib: error: refuse.yaml: at the root")
    assert "setting 'bf17' is not supported" in refused.stderr
    assert "Traceback" not in refused.stderr
    (workdir / "crash.yaml").write_text("_target_: draws.crash\nsetting: x\n")
    crashed = corelib(workdir, "run", "crash.yaml", "--allow-import", "draws")
    assert crashed.returncode == 1 and "Traceback" in crashed.stderr  # other errors: user code


def test_show_names_the_file_of_a_config_no_file_can_hold(workdir: Path) -> None:
    (workdir / "holds.py").write_text("import threading\nlock = {'value': threading.Lock()}\n")
    shown = corelib(workdir, "show", "holds.py")
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.startswith("corelib: error: holds.py: ")
    assert "Traceback" not in shown.stderr


def test_check_prints_problems_with_terminal_escapes_made_visible(workdir: Path) -> None:
    name = "odd\x1b[2J.yaml"  # a file name is text from elsewhere too
    (workdir / name).write_text("_target_: draws.greet\nnam: 1\n")
    checked = corelib(workdir, "check", name, "--allow-import", "draws")
    assert checked.returncode == 2, checked.stderr
    assert "\x1b" not in checked.stdout
    assert "odd\\x1b[2J.yaml: " in checked.stdout and "unexpected keyword" in checked.stdout

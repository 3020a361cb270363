"""Workers started by ``corelib run --nproc-per-node`` import exactly what the launcher could.

torchrun started each worker as ``python -m corelib``, which puts the current folder first
on the worker's ``sys.path``: a ``yaml.py`` in a downloaded recipe's folder would then run in
every worker, though the launcher (the ``corelib`` console script) never looks there. Workers get
the current folder only when the launcher's own ``sys.path`` held it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

from corelib._cli._launch import worker_environment

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).with_name("corelib")

SHADOW = """
from pathlib import Path
import os
Path(__file__).with_name(f"shadowed-{os.getpid()}").touch()
raise ImportError("the folder's yaml.py was imported")
"""


def _run(cwd: Path, launcher: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``LAUNCHER run ARGS --nproc-per-node 2`` in ``cwd`` with only this checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.update(PYTHONPATH=str(REPO), CORELIB_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        [*launcher, "run", *args, "--nproc-per-node", "2"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param([str(CONSOLE_SCRIPT)], id="console script"),
        pytest.param([sys.executable, "-P", "-m", "corelib"], id="python -P -m corelib"),
    ],
)
def test_a_module_in_the_current_folder_does_not_shadow_one_in_the_workers(
    tmp_path: Path, launcher: list[str]
) -> None:
    if not Path(launcher[0]).exists():
        pytest.skip("the corelib console script is not installed next to this Python")
    (tmp_path / "job.yaml").write_text("main: {_target_: collections.OrderedDict, a: 1}\n")
    (tmp_path / "yaml.py").write_text(SHADOW)
    done = _run(tmp_path, launcher, "job.yaml", "--allow-import", "collections")
    assert not list(tmp_path.glob("shadowed-*")), done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{OrderedDict(a=1)!r}\n"  # rank 0's result


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_module_beside_the_config_still_works_when_the_launcher_could_import_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "job.yaml").write_text("main: {_target_: helper.answer}\n")
    (tmp_path / "helper.py").write_text("def answer() -> int:\n    return 42\n")
    done = _run(tmp_path, [sys.executable, "-m", "corelib"], "job.yaml", "--allow-import", "helper")
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr


def test_workers_get_the_current_folder_only_when_the_launcher_had_it(tmp_path: Path) -> None:
    here = str(tmp_path)
    elsewhere = str(tmp_path.parent)
    assert worker_environment({}, ["/venv/bin", elsewhere], here) == {}
    for spelling in (here, "", ".", here + os.sep):  # python -m, python -c, PYTHONPATH=.
        updates = worker_environment({"PYTHONPATH": "/repo"}, ["/venv/bin", spelling], here)
        assert updates == {"PYTHONPATH": os.pathsep.join([here, "/repo"])}
    assert worker_environment({}, [here], here)["PYTHONPATH"] == here
